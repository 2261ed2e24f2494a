"""igloo's Python transform worker (written by igloo; do not edit).

Loads one transform module and answers batches over stdin/stdout in length-prefixed JSON
frames; the module's own output goes to stderr.
Started as: python3 -u worker.py <transform file> <project root>
"""

import asyncio
import dataclasses
import datetime
import decimal
import importlib.util
import inspect
import json
import os
import struct
import sys
import traceback
import typing
import uuid

frames_out = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)  # print() and C-level writes to stdout land on stderr
sys.stdout = sys.stderr
frames_in = sys.stdin.buffer


def send(obj):
    body = obj.encode("utf-8") if isinstance(obj, str) else json.dumps(obj).encode("utf-8")
    frames_out.write(struct.pack(">I", len(body)) + body)
    frames_out.flush()


def read_frame():
    head = frames_in.read(4)
    if len(head) < 4:
        return None
    (n,) = struct.unpack(">I", head)
    return json.loads(frames_in.read(n))


def encode(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump"):  # pydantic
        return value.model_dump()
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def input_type(fn):
    """The first parameter's class when it is a dataclass or a pydantic model: records are
    built as that class; otherwise they stay dicts (TypedDicts are dicts)."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        return None
    params = list(inspect.signature(fn).parameters)
    cls = hints.get(params[0]) if params else None
    if isinstance(cls, type) and (dataclasses.is_dataclass(cls) or hasattr(cls, "model_validate")):
        return cls
    return None


def load(path, root):
    sys.path[:0] = [root, os.path.dirname(path)]
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    fn = getattr(module, "transform", None)
    if not callable(fn):
        raise TypeError(f"{path} must define its function: def transform(record): ...")
    return fn


def main():
    try:
        fn = load(sys.argv[1], sys.argv[2])
    except BaseException:
        send({"load_error": traceback.format_exc()})
        sys.exit(1)
    cls = input_type(fn)
    is_async = inspect.iscoroutinefunction(fn)
    loop = asyncio.new_event_loop() if is_async else None
    send({"ready": True})
    while True:
        frame = read_frame()
        if frame is None:
            return
        parts = []
        for record in frame["records"]:
            try:
                arg = record
                if cls is not None:
                    arg = cls.model_validate(record) if hasattr(cls, "model_validate") else cls(**record)
                out = fn(arg)
                if loop is not None:
                    out = loop.run_until_complete(out)
                if out is None:
                    out = []
                elif not isinstance(out, (list, tuple)):
                    out = [out]
                parts.append('{"out":' + json.dumps(list(out), default=encode, allow_nan=False) + "}")
            except Exception as e:
                # The traceback without this worker's own frame.
                stack = "".join(traceback.format_exception(type(e), e, e.__traceback__.tb_next if e.__traceback__ else None))
                parts.append(json.dumps({"error": f"{type(e).__name__}: {e}", "stack": stack}))
        send('{"results":[' + ",".join(parts) + "]}")


main()
