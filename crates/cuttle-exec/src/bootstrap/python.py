# cuttle-exec Python bootstrap (generated; do not edit). It reads the script's variables once
# from standard input into the octopusvariables dictionary, replaces standard input with
# /dev/null, then runs the script as __main__ with Calamari's helper functions in its globals.
import base64 as _cuttle_base64
import json as _cuttle_json
import os as _cuttle_os
import runpy as _cuttle_runpy
import sys as _cuttle_sys


def _cuttle_read_variables():
    data = _cuttle_sys.stdin.buffer.read()
    devnull = _cuttle_os.open(_cuttle_os.devnull, _cuttle_os.O_RDONLY)
    _cuttle_os.dup2(devnull, 0)
    _cuttle_os.close(devnull)
    entries = _cuttle_json.loads(data.decode("utf-8")) if data.strip() else []
    return {entry["Name"]: entry["Value"] for entry in entries}


octopusvariables = _cuttle_read_variables()


def encode(value):
    return _cuttle_base64.b64encode(str(value).encode("utf-8")).decode("ascii")


def decode(value):
    return _cuttle_base64.b64decode(value).decode("utf-8")


def get_octopusvariable(key):
    return octopusvariables[key]


def set_octopusvariable(name, value, sensitive=False):
    octopusvariables[name] = value
    message = "##octopus[setVariable name='{0}' value='{1}'".format(encode(name), encode(value))
    if sensitive:
        message += " sensitive='{0}'".format(encode("True"))
    print(message + "]", flush=True)


def createartifact(path, fileName=None):
    if fileName is None:
        fileName = _cuttle_os.path.basename(path)
    length = str(_cuttle_os.stat(path).st_size) if _cuttle_os.path.isfile(path) else "0"
    path = _cuttle_os.path.abspath(path)
    print("##octopus[stdout-verbose]")
    print("Artifact {0} will be collected from {1} after this step completes".format(fileName, path))
    print("##octopus[stdout-default]")
    print(
        "##octopus[createArtifact path='{0}' name='{1}' length='{2}']".format(
            encode(path), encode(fileName), encode(length)
        ),
        flush=True,
    )


new_octopusartifact = createartifact


def updateprogress(progress, message=""):
    print(
        "##octopus[progress percentage='{0}' message='{1}']".format(encode(progress), encode(message)),
        flush=True,
    )


update_progress = updateprogress


def failstep(message=None):
    if message is not None:
        print("##octopus[resultMessage message='{0}']".format(encode(message)), flush=True)
    _cuttle_sys.exit(1)


fail_step = failstep


def _cuttle_print_at(level, message):
    print("##octopus[stdout-{0}]".format(level))
    print(message)
    print("##octopus[stdout-default]", flush=True)


def printverbose(message):
    _cuttle_print_at("verbose", message)


def printhighlight(message):
    _cuttle_print_at("highlight", message)


def printwait(message):
    _cuttle_print_at("wait", message)


def printwarning(message):
    _cuttle_print_at("warning", message)


_CUTTLE_EXPORTS = (
    "octopusvariables",
    "encode",
    "decode",
    "get_octopusvariable",
    "set_octopusvariable",
    "createartifact",
    "new_octopusartifact",
    "updateprogress",
    "update_progress",
    "failstep",
    "fail_step",
    "printverbose",
    "printhighlight",
    "printwait",
    "printwarning",
)


def _cuttle_main():
    script = _cuttle_sys.argv[1]
    _cuttle_sys.argv = [script] + _cuttle_sys.argv[2:]
    _cuttle_sys.path.insert(0, _cuttle_os.getcwd())
    helpers = {name: globals()[name] for name in _CUTTLE_EXPORTS}
    _cuttle_runpy.run_path(script, init_globals=helpers, run_name="__main__")


_cuttle_main()
