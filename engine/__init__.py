"""The generator's engine: one module per noun (spec, options, render, project, plan, apply)."""
