"""What the conformance suite found: a status per check and case, and the table it prints."""

from dataclasses import dataclass, field

CHECKS = ("build", "shapes", "forward", "gradcheck", "layout", "repeat", "state", "errors", "cuda")
PASS, FAIL, SKIP, NA = "ok", "FAIL", "not checked", "n/a"
_SYMBOLS = {PASS: "ok", FAIL: "FAIL", SKIP: "--", NA: "n/a"}


@dataclass
class LayerReport:
    """Results for one layer type: per check a list of (status, detail)."""

    type_name: str
    plugin: str = ""
    cases_from: str = ""
    devices: tuple = ()
    results: dict = field(default_factory=lambda: {c: [] for c in CHECKS})

    def add(self, check, status, detail=""):
        self.results[check].append((status, detail))

    def status(self, check):
        statuses = [s for s, _ in self.results[check]]
        for s in (FAIL, PASS, SKIP):
            if s in statuses:
                return s
        return NA if statuses else SKIP

    def details(self, check):
        """What to say about a check: the details of its overall status, and for a check that
        passed, what was not checked (so a partial check never reads as a full pass)."""
        wanted = self.status(check)
        seen = []
        for status, detail in self.results[check]:
            if detail and status == wanted and detail not in seen:
                seen.append(detail)
        if wanted == PASS:
            seen += [f"partly not checked: {d}" for s, d in self.results[check]
                     if s == SKIP and d and f"partly not checked: {d}" not in seen]
        return seen or (["no case ran this check"] if wanted == SKIP else [])

    def partial(self, check):
        return self.status(check) == PASS and any(s == SKIP for s, _ in self.results[check])

    @property
    def failed(self):
        return [c for c in CHECKS if self.status(c) == FAIL]

    @property
    def not_checked(self):
        return [c for c in CHECKS if self.status(c) == SKIP]


@dataclass
class PluginReport:
    plugin: str
    package: str = None
    layers: list = field(default_factory=list)

    @property
    def failed(self):
        return any(r.failed for r in self.layers)

    def format(self, verbose=False):
        return format_report(self, verbose)

    def assert_ok(self, strict=False):
        """Raise AssertionError with the report if a check failed (or, ``strict``, was not run)."""
        skipped = any(r.not_checked or any(r.partial(c) for c in CHECKS) for r in self.layers)
        bad = self.failed or not self.layers or (strict and skipped)
        if bad:
            raise AssertionError("\n" + self.format())


def format_report(report, verbose=False):
    """The per-layer table, then a line for every check that failed or was not run."""
    pkg = f" (package {report.package})" if report.package else ""
    lines = [f"plugin '{report.plugin}'{pkg}: {len(report.layers)} layer type(s)"]
    if not report.layers:
        lines.append("  it registers no layers and no kernels: nothing to check")
        return "\n".join(lines)
    head = ["layer", "cases", "kernels"] + list(CHECKS)
    rows = [[r.type_name, r.cases_from, ",".join(r.devices) or "none"]
            + [_SYMBOLS[r.status(c)] + ("*" if r.partial(c) else "") for c in CHECKS]
            for r in report.layers]
    widths = [max(len(row[i]) for row in [head] + rows) for i in range(len(head))]
    for row in [head] + rows:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    lines.append("(ok passed, ok* passed but partly not checked, FAIL failed, -- not checked, "
                 "n/a does not apply)")
    counts = {s: 0 for s in _SYMBOLS}
    for r in report.layers:
        shown = [c for c in CHECKS if verbose or r.status(c) in (FAIL, SKIP) or r.partial(c)]
        if shown:
            lines.append(f"{r.type_name} ({r.plugin}):")
        for c in CHECKS:
            counts[r.status(c)] += 1
        for c in shown:
            for detail in (r.details(c) if verbose else
                           [d for d in r.details(c) if r.status(c) != PASS or "partly" in d]) \
                    or [""]:
                lines.append(f"  {c}: {r.status(c)}" + (f": {detail}" if detail else ""))
    lines.append(f"result: {counts[FAIL]} failed, {counts[PASS]} passed, {counts[SKIP]} not "
                 f"checked, {counts[NA]} not applicable")
    return "\n".join(lines)
