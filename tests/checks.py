"""checks.py: what the Python tests share: the assertions (check.h is the C
tests'), and loading a script of tools/ as a module.

A failed check prints what failed and is counted; the test's main returns
finish(name), which prints the closing line ctest's log shows and gives the
exit status."""
import importlib.machinery
import importlib.util

failures = 0
checks = 0


def check(cond, what):
    """Counts a check; prints what when cond is false. Returns cond."""
    global failures, checks
    checks += 1
    if not cond:
        failures += 1
        print("FAILED:", what)
    return cond


def finish(name):
    print(f"{name}: {checks - failures} passed, {failures} failed")
    return 1 if failures else 0


def load_tool(path, name):
    """The script at path (a tools/ file without .py) as module name."""
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod
