"""Compatibility forwarder: the attribute probes are now :mod:`vecgen.minis.probes`.

``python -m vecgen.backends.perceptors.probes ARGS`` still works and runs
``python -m vecgen.minis.probes ARGS``. Importing this module does nothing, so
the backends layer never imports the minis kit that sits above it.
"""

if __name__ == "__main__":
    import runpy

    runpy.run_module("vecgen.minis.probes", run_name="__main__", alter_sys=True)
