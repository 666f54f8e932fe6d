"""Runnable configs that ship with tfdl (installed as `tfdl.configs`).

`tfdl run NAME` resolves NAME to `NAME.yaml` here when no such file exists in
the working directory, so every shipped config runs from any folder.
"""
