"""The studio page: one tab per verb of the registry, the gallery and search tabs, one queue.

Everything a tab shows comes from the verb's config (:mod:`vecgen.studio.forms`):
a verb added to :data:`vecgen.api.VERBS` with a config gets a tab, an upload
widget for each input file (by its kind) and an API endpoint ``/NAME``, with no
studio code of its own. A run calls the verb's function (:mod:`vecgen.studio.jobs`).
Runs from every tab and API caller share one queue of one worker
(``concurrency_id="vecgen-run"``), so two browser tabs run their jobs one after
another on the same process-wide torch state.
"""

from __future__ import annotations

import inspect
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

from vecgen.api import Verb
from vecgen.errors import VecgenError
from vecgen.studio.forms import Field, cli_argv, command_line, form_options, studio_verbs, verb_fields
from vecgen.studio.jobs import Job
from vecgen.studio.safety import MAX_UPLOAD_BYTES, check_upload, escape, inside, status_html

CSS = """
.vg-preview img { height: 100%; width: 100%; max-height: 340px; object-fit: contain; image-rendering: pixelated; }
.vg-status { font-family: ui-monospace, monospace; padding: 6px 8px; border-radius: 6px; background: #f4f4f5; }
.vg-status.vg-error { background: #fee2e2; color: #7f1d1d; }
.vg-status.vg-done { background: #dcfce7; }
"""
RUNS = "runs"
#: Most files one folder input may hold (a folder of training photos).
MAX_FOLDER_FILES = 1000


def configure_gradio(folder: Path) -> None:
    """Environment Gradio and vecgen read: no analytics or telemetry, no server-side rendering, files in
    ``folder``.

    Call before Gradio is imported: the upload folder and file cache are then
    ``folder`` itself, so every file the server can hand out lies in it; vecgen's
    own caches (``$VECGEN_CACHE``: ``edit --method global`` responses) go in its
    ``cache`` folder, so a run writes nothing outside the studio's folder.
    """
    env = {
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "GRADIO_SSR_MODE": "False",
        "GRADIO_TEMP_DIR": str(folder),
        "GRADIO_EXAMPLES_CACHE": str(folder / ".examples"),
        "GRADIO_ALLOW_FLAGGING": "never",
        "GRADIO_MCP_SERVER": "False",
        "DO_NOT_TRACK": "1",
        "VECGEN_CACHE": str(folder / "cache"),
    }
    os.environ.update(env)


class Studio:
    """The studio's state: its folder, the verbs' forms, the jobs running per browser session."""

    def __init__(
        self, folder: str | Path, *, galleries: Sequence[str | Path] = (), max_upload: int = MAX_UPLOAD_BYTES
    ) -> None:
        self.folder = Path(folder).resolve()
        self.runs = self.folder / RUNS
        self.verbs: dict[str, Verb] = studio_verbs()
        self.fields: dict[str, list[Field]] = {name: verb_fields(v) for name, v in self.verbs.items()}
        self.galleries = [Path(g).resolve() for g in galleries]
        self.max_upload = max_upload
        self.running: dict[str, Job] = {}
        self.jobs: list[Job] = []

    # ------------------------------------------------------------------ a run
    def make_job(self, name: str, values: dict[str, Any], save_as: str | None = None) -> Job:
        """A job for the form of verb ``name`` filled with ``values`` (uploads checked, options checked; not
        started). Uploads must be files in the studio's folder; a folder input's files are copied into
        the run's folder. Raises a one-line :class:`VecgenError`."""
        if name not in self.verbs:
            raise VecgenError(f"no studio form for {name!r}")
        verb = self.verbs[name]
        fields = self.fields[name]
        suffix = save_as if save_as in verb.outputs else Path(verb.default_output).suffix
        output = f"{name}{suffix}"
        job = Job(verb, {}, self.runs, output)
        job.folder = self.runs / f"{time.strftime('%Y%m%d-%H%M%S')}-{job.id}-{name}"
        run_values, shown_values = dict(values), dict(values)
        try:
            for f in fields:
                if f.kind in ("upload", "uploads", "folder") and values.get(f.name):
                    run_values[f.name], shown_values[f.name] = self._uploads(f, values[f.name], job.folder)
            job.options = form_options(fields, run_values)
            job.shown = cli_argv(fields, form_options(fields, shown_values), output)
            job.check()
        except BaseException:
            shutil.rmtree(job.folder, ignore_errors=True)  # a folder input's copies, if any
            raise
        return job

    def _uploads(self, f: Field, value: Any, folder: Path) -> tuple[Any, Any]:
        """``(value for the run, value for the command line)`` of one upload field."""
        items = value if isinstance(value, (list, tuple)) else [value]
        paths = [_upload_path(v) for v in items if v]
        if f.kind == "folder" and len(paths) > MAX_FOLDER_FILES:
            raise VecgenError(f"{f.label}: {len(paths)} files is over the studio's {MAX_FOLDER_FILES}")
        for p in paths:
            if not inside(p, self.folder):  # an API caller naming a file of the server's: not an upload
                raise VecgenError(f"{f.label}: not an uploaded file")
            check_upload(p, f.accept, self.max_upload)
        names = [Path(p).name for p in paths]
        if f.kind == "folder":
            target = folder / "inputs" / f.name
            target.mkdir(parents=True, exist_ok=True)
            for p in paths:
                shutil.copyfile(p, _free_name(target, Path(p).name))
            return str(target), f.name
        if f.kind == "uploads":
            return paths, names
        return paths[0], names[0]

    def run(self, name: str, values: dict[str, Any], save_as: str | None, session: str):
        """Start a job and yield ``(frame, status, files, command, metadata, log)`` until it ends."""
        import gradio as gr

        skip = gr.skip()
        what = _headline(name, values)
        try:
            job = self.make_job(name, values, save_as)
            command = command_line(name, job.shown)
            job.start()
        except VecgenError as e:
            yield skip, status_html(f"{name}: {e}", "error"), None, "", None, ""
            return
        self.jobs.append(job)
        self.running[session] = job
        steps = values.get("steps")
        try:
            yield None, status_html(f"{what}: starting"), None, command, None, ""
            told_stop = False
            while True:
                done = job.wait(0.15)
                frame = job.take_frame()
                if frame is not None or (job.stop.is_set() and not told_stop):
                    # Only this stream writes the status: a Stop reply arriving after the final state would hide it.
                    told_stop = told_stop or job.stop.is_set()
                    text = (
                        progress_text(job.step, job.values, steps)
                        if frame is None
                        else progress_text(frame.step, frame.values, steps)
                    )
                    yield (
                        frame.image if frame is not None and frame.image is not None else skip,
                        status_html(
                            f"{what}: {'stopping · ' if job.stop.is_set() else ''}{text}",
                            step=job.step if frame is None else frame.step,
                        ),
                        skip,
                        skip,
                        skip,
                        skip,
                    )
                if done:
                    break
        finally:
            if job.running:  # the page went away (Gradio closed this generator): stop, and free the queue only then
                job.stop.set()
                job.wait()
            if self.running.get(session) is job:
                del self.running[session]
        log = "\n".join(job.log)
        if job.error:
            yield skip, status_html(f"{what}: {job.error}", "error"), None, command, job.metadata(), log
            return
        state = f"stopped after {job.step} steps" if job.interrupted else f"done, {job.step} steps"
        last = progress_text(job.step, job.values, None).split(" · ", 1)[-1] if job.values else ""
        shown = status_html(
            f"{what}: {state}" + (f" · {last}" if last else ""),
            "done",
            step=job.step,
            started=job.started,
            finished=job.finished,
        )
        yield (final_picture(job) or skip, shown, [str(p) for p in job.files()], command, job.metadata(), log)

    def stop(self, session: str) -> bool:
        """Ask this session's run to stop; True when one was running (its own stream reports the rest)."""
        job = self.running.get(session)
        if job is None:
            return False
        job.stop.set()
        return True

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every running job: one that has taken steps keeps what it has (its next step saves it);
        one still loading its models is left, writing nothing, as Ctrl-C before the first step does in the CLI."""
        for job in list(self.running.values()):
            job.stop.set()
        for job in list(self.running.values()):
            if job.step > 0:
                job.wait(timeout)


def _free_name(folder: Path, name: str) -> Path:
    """``folder / name``, or ``stem-2.suffix``... when two uploads share a name."""
    path, n = folder / name, 1
    while path.exists():
        n += 1
        path = folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
    return path


def _upload_path(value: Any) -> str:
    """A Gradio file value (a path, or a dict/FileData with one) as a path string."""
    if isinstance(value, dict):
        value = value.get("path") or value.get("name")
    value = getattr(value, "path", value)
    if not isinstance(value, (str, os.PathLike)):
        raise VecgenError(f"not an uploaded file: {type(value).__name__}")
    return str(value)


def _headline(name: str, values: dict[str, Any]) -> str:
    text = values.get("prompt") or " -> ".join(str(values[k]) for k in ("source", "target") if values.get(k))
    return f"{name} \u201c{text}\u201d" if text else name


def progress_text(step: int, values: dict[str, float], steps: Any) -> str:
    try:
        total = f" of {int(float(str(steps).strip()))}" if steps not in (None, "") else ""
    except ValueError:
        total = ""
    terms = " · ".join(f"{k} {v:.4f}" for k, v in values.items() if k != "total")
    loss = f" · loss {values['total']:.4f}" if "total" in values else ""
    return f"step {step}{total}{loss}" + (f" ({terms})" if terms and len(values) > 2 else "")


def final_picture(job: Job):
    """The picture of a finished job: the Result's own (in memory), else its PNG, else its SVG through
    vecgen's rasterizer, else None."""
    picture = job.picture()
    if picture is not None:
        return picture
    files = job.files()
    for p in files:
        if p.suffix.lower() == ".png":
            from vecgen.io import open_image

            return open_image(p)
    for p in files:
        if p.suffix.lower() == ".svg":
            from vecgen.api import render_svg

            return render_svg(p)
    return None


# ----------------------------------------------------------------------------- widgets
def widget(f: Field, elem: str):
    """The Gradio input for one field, from its option: label = the flag, info = its help, numbers bounded."""
    import gradio as gr

    from vecgen.studio.forms import UPLOAD_KINDS

    common: dict[str, Any] = {"label": f.label, "info": f.help or None, "elem_id": elem}
    meta = f.meta
    if f.kind in ("upload", "uploads", "folder"):
        label = f"{f.label}: {f.help}" if f.help else f.label  # File has no info line
        if f.kind == "folder":
            label += " (upload the folder's files)"
        types = list(UPLOAD_KINDS.get(f.accept or "file", ())) or None
        return gr.File(
            file_count="single" if f.kind == "upload" else "multiple",
            type="filepath",
            height=130,
            label=label,
            elem_id=elem,
            file_types=types,
        )
    if f.kind == "bool":
        return gr.Checkbox(value=bool(f.default), **common)
    if f.kind == "choice":
        value = str(f.default) if f.default is not None and str(f.default) in meta.choices else None
        return gr.Dropdown(choices=list(meta.choices), value=value, **common)
    if f.kind in ("int", "float"):
        if isinstance(f.default, (int, float)) and not isinstance(f.default, bool):
            return gr.Number(
                value=f.default,
                precision=0 if f.kind == "int" else None,
                minimum=meta.minimum,
                maximum=meta.maximum,
                **common,
            )
        # no number default (auto): a text box, so blank stays blank (a Number sends 0)
        return gr.Textbox(value="", placeholder="auto", **common)
    if f.kind == "lines":
        return gr.Textbox(lines=2, placeholder="one per line", **common)
    if f.positional and meta.kind == "text":
        return gr.Textbox(lines=2, placeholder=meta.help, **common)
    return gr.Textbox(value=f.default_text(), placeholder="auto", **common)


def endpoint(names: list[str], body: Callable) -> Callable:
    """A function whose signature names the form's inputs (the API's parameter names), then the request."""
    import gradio as gr

    def fn(*args, **kwargs):
        # Gradio passes the request where the signature puts it: after the inputs, positionally
        request = kwargs.pop("request", None) or (args[len(names)] if len(args) > len(names) else None)
        return (yield from body(dict(zip(names, args)), request))

    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None) for n in names]
    params.append(
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request)
    )
    fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]  # typeshed lacks it; inspect reads it
    fn.__annotations__ = {"request": gr.Request}
    return fn


def verb_tab(studio: Studio, name: str) -> None:
    """The tab of one verb: its form, Run/Stop, the live preview and the results."""
    import gradio as gr

    verb = studio.verbs[name]
    fields = studio.fields[name]
    gr.Markdown(f"**vecgen {name}**: {escape(verb.summary)}")
    inputs: dict[str, Any] = {}
    with gr.Row():
        with gr.Column(scale=1):
            for f in (x for x in fields if x.section == "main"):
                inputs[f.name] = widget(f, f"{name}-{f.name}")
            with gr.Row():
                run_btn = gr.Button("Run", variant="primary", elem_id=f"{name}-run")
                stop_btn = gr.Button("Stop", variant="stop", elem_id=f"{name}-stop")
            if len(verb.outputs) > 1:
                inputs["save_as"] = gr.Dropdown(
                    choices=list(verb.outputs),
                    value=Path(verb.default_output).suffix,
                    label="save as",
                    info="the -o file's type",
                    elem_id=f"{name}-save_as",
                )
            for section, title, open_ in (("options", f"{name} options", True), ("advanced", "advanced", False)):
                group = [x for x in fields if x.section == section]
                if group:
                    with gr.Accordion(title, open=open_):
                        for f in group:
                            inputs[f.name] = widget(f, f"{name}-{f.name}")
        with gr.Column(scale=1):
            preview = gr.Image(
                label="preview",
                type="pil",
                format="png",
                interactive=False,
                height=360,
                elem_id=f"{name}-preview",
                elem_classes=["vg-preview"],
            )
            status = gr.HTML(status_html("ready"), elem_id=f"{name}-status")
            files = gr.File(label="results", file_count="multiple", interactive=False, elem_id=f"{name}-files")
            command = gr.Textbox(
                label="copy as CLI command", interactive=False, buttons=["copy"], elem_id=f"{name}-command"
            )
            metadata = gr.JSON(label="metadata and settings", elem_id=f"{name}-metadata")
            log = gr.Textbox(label="log", lines=3, max_lines=12, interactive=False, elem_id=f"{name}-log")
    for f in fields:  # an upload is checked as it arrives, and again when a run starts
        if f.kind in ("upload", "uploads", "folder"):
            inputs[f.name].upload(
                _upload_checker(studio, f),
                inputs=inputs[f.name],
                outputs=[inputs[f.name], status],
                api_visibility="private",
                queue=False,
            )

    names = list(inputs)

    def body(values: dict[str, Any], request):
        save_as = values.pop("save_as", None)
        session = getattr(request, "session_hash", None) or "api"
        yield from studio.run(name, values, save_as, session)

    run_btn.click(
        endpoint(names, body),
        inputs=[inputs[n] for n in names],
        outputs=[preview, status, files, command, metadata, log],
        api_name=name,
        concurrency_limit=1,
        concurrency_id="vecgen-run",
        show_progress="minimal",
    )

    def stop(request=None):
        studio.stop(getattr(request, "session_hash", None) or "api")

    stop.__annotations__ = {"request": gr.Request}  # an object, not a string: Gradio fills it in

    # queued (so Gradio gives it the page's session) but never waiting: no limit of its own
    stop_btn.click(
        stop,
        inputs=None,
        outputs=None,
        api_name=f"stop_{name}",
        concurrency_limit=None,
        concurrency_id="vecgen-stop",
        show_progress="hidden",
    )


def _upload_checker(studio: Studio, f: Field) -> Callable:
    import gradio as gr

    def check(value):
        paths = value if isinstance(value, list) else [value]
        try:
            for p in paths:
                if p:
                    check_upload(_upload_path(p), f.accept, studio.max_upload)
        except VecgenError as e:
            gr.Warning(str(e))
            return None, status_html(f"upload refused: {e}", "error")
        return gr.skip(), status_html(f"{f.label}: {', '.join(Path(_upload_path(p)).name for p in paths if p)} ok")

    return check


def build_app(studio: Studio):
    """The Gradio Blocks of the whole studio (not launched)."""
    import gradio as gr

    from vecgen import __version__
    from vecgen.studio.browse import browse_tabs

    with gr.Blocks(title="vecgen studio", analytics_enabled=False) as demo:
        gr.Markdown(f"## vecgen studio <small>{escape(__version__)}</small>")
        with gr.Tabs():
            for name in studio.verbs:
                with gr.Tab(name, id=name, elem_id=f"tab-{name}"):
                    verb_tab(studio, name)
            browse_tabs(studio)
    return demo
