"""checks.py: the assertions the Python tests share (check.h is the C tests').

A failed check prints what failed and is counted; the test's main returns
finish(name), which prints the closing line ctest's log shows and gives the
exit status."""
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
