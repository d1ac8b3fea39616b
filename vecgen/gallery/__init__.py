"""Galleries: run a TOML spec of prompts x seeds, keep a resumable manifest, build a static page.

A spec::

    title = "Shapes"                       # optional

    [defaults]                             # options for every entry (function default: draw)
    clip = "auto"
    steps = 200
    seeds = [0, 1]

    [[entry]]
    prompt = "a red circle"                # or prompts = ["...", "..."]
    strokes = 64                           # any option of the entry's function

    [[entry]]
    function = "paint"
    prompts = ["a lighthouse", "a forest"]
    seeds = [7]

expands to one job per prompt x seed. Every option value is checked as the
API checks it when the spec is parsed, so a bad value is a one-line error
naming its line, never a batch of failed jobs. A job is identified by a hash of its
resolved settings (function, every option given in the spec, prompt, seed), so
a re-run skips finished jobs and re-runs exactly the ones whose settings
changed. ``site/manifest.json`` records every job's status, time, final loss
and files; it is rewritten atomically after each job, and every output file is
written to a temp file and renamed, so an interrupted run keeps all it finished.

The modules, each importing only those above it:

- :mod:`~vecgen.gallery.spec`: the spec format, its checks, :class:`Job` and :class:`Spec`;
- :mod:`~vecgen.gallery.manifest`: the manifest, output file names, the site lock;
- :mod:`~vecgen.gallery.executors`: :func:`execute_job`, the local and Ray executors;
- :mod:`~vecgen.gallery.site`: the static page (``index.html``) and its CLIP ranks;
- :mod:`~vecgen.gallery.run`: :func:`plan` and :func:`run_gallery`, which tie them together.

To run each job through a function of one's own (a wrapper that times, logs or
fails on purpose), give :func:`run_gallery` an executor made with it:
``run_gallery(spec, out, executor=LocalExecutor(job_runner=fn))``, where
``fn(payload, cache)`` returns what :func:`execute_job` would.
"""
from vecgen.gallery.executors import (Executor, JobRunner, LocalExecutor, PerceptorCache, RayExecutor, execute_job,
                                      make_executor)
from vecgen.gallery.manifest import (FILES_DIR, FORMAT, FORMAT_VERSION, LOCK, MANIFEST, is_finished, output_stem,
                                     read_manifest, write_manifest)
from vecgen.gallery.run import RunSummary, check_devices, check_models, check_writable_site, plan, run_gallery
from vecgen.gallery.site import INDEX, build_site, drawn_text, rank_site, render_page
from vecgen.gallery.checks import check_options
from vecgen.gallery.spec import (MANAGED_OPTIONS, MAX_SEED, UNSUPPORTED_OPTIONS, Job, Spec, accepts_option,
                                 available_functions, function_options, job_hash, load_spec, parse_spec,
                                 required_options, resolve_function)

__all__ = [
    # spec
    "MANAGED_OPTIONS", "MAX_SEED", "UNSUPPORTED_OPTIONS", "Job", "Spec", "accepts_option", "available_functions",
    "check_options", "function_options", "job_hash", "load_spec", "parse_spec", "required_options",
    "resolve_function",
    # manifest
    "FILES_DIR", "FORMAT", "FORMAT_VERSION", "LOCK", "MANIFEST", "is_finished", "output_stem", "read_manifest",
    "write_manifest",
    # executors
    "Executor", "JobRunner", "LocalExecutor", "PerceptorCache", "RayExecutor", "execute_job", "make_executor",
    # site
    "INDEX", "build_site", "drawn_text", "rank_site", "render_page",
    # run
    "RunSummary", "check_devices", "check_models", "check_writable_site", "plan", "run_gallery",
]
