"""Compatibility forwarder: the mini-model trainer is now :mod:`vecgen.minis.train`.

``python -m vecgen.backends.perceptors.train ARGS`` still works and runs
``python -m vecgen.minis.train ARGS``. Importing this module does nothing, so
the backends layer never imports the minis kit that sits above it.
"""

if __name__ == "__main__":
    import runpy

    runpy.run_module("vecgen.minis.train", run_name="__main__", alter_sys=True)
