"""The ``course`` command (also ``python -m hw_utils``): build, check, execute, grade, demo,
report, similarity."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from hw_utils.grading.nbgrader_cli import NbgraderError
from hw_utils.grading.outcomes import GradingOutputError
from hw_utils.grading.sandbox import SandboxUnavailableError
from hw_utils.grading.submissions import SubmissionsError
from hw_utils.manifest import CourseNotFoundError, ManifestError, find_course_root, load_manifest

EXPECTED_ERRORS = (
    CourseNotFoundError,
    GradingOutputError,
    ManifestError,
    NbgraderError,
    SandboxUnavailableError,
    SubmissionsError,
)

UNSANDBOXED_WARNING = """\
WARNING: --no-sandbox: student code will run with YOUR permissions, network and files. It can
read the gradebook and the hidden tests and change its own score. Use this only for submissions
you trust (e.g. your own samples) or on a machine you can throw away."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="course", description=__doc__)
    parser.add_argument(
        "--course-dir", type=Path, help="course folder (default: found from the working directory)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="generate release/ from source/ with nbgrader")
    build.add_argument("assignments", nargs="*", help="assignment ids (default: all)")

    sub.add_parser("check", help="release in sync, no leaks, metadata and totals consistent")

    execute = sub.add_parser(
        "execute", help="run source notebooks in the CI profile, store outputs"
    )
    execute.add_argument("assignments", nargs="+")

    grade = sub.add_parser("grade", help="autograde submissions in the sandbox, write grades")
    grade.add_argument("assignment")
    grade.add_argument(
        "--submissions",
        required=True,
        type=Path,
        help="folder (<student>/<assignment>/*.ipynb or <student>/*.ipynb) or LMS zip",
    )
    grade.add_argument(
        "--out", required=True, type=Path, help="where grades.csv, cells.csv and feedback/ go"
    )
    grade.add_argument("--db", help="gradebook URL (default: sqlite:///<course>/gradebook.db)")
    _add_run_options(grade)
    grade.add_argument("--scheduler", help="Dask scheduler address: grade on a cluster")

    demo = sub.add_parser("demo", help="build and grade the bundled sample submissions")
    demo.add_argument("assignments", nargs="*", help="assignment ids (default: all)")
    demo.add_argument(
        "--out", type=Path, default=None, help="output folder (default: <course>/demo)"
    )
    demo.add_argument(
        "--all-samples",
        action="store_true",
        help="grade every sample (default: full, blank and a few buggy ones per assignment)",
    )
    _add_run_options(demo)

    report = sub.add_parser(
        "report", help="after grading: scores, failed cells, points lost, time, flags (HTML, CSV)"
    )
    report.add_argument("assignment", nargs="?", help="assignment id (or --all)")
    report.add_argument(
        "--all",
        action="store_true",
        help="the whole course: one row per student, one column per assignment, totals",
    )
    report.add_argument(
        "--grades", type=Path, help="the folder course grade --out wrote (its grades.csv)"
    )
    report.add_argument(
        "--out", type=Path, help="where the report goes (default: <course>/reports)"
    )
    report.add_argument("--db", help="gradebook URL (default: sqlite:///<course>/gradebook.db)")

    similarity = sub.add_parser(
        "similarity", help="pairwise similarity of the students' code (never changes a grade)"
    )
    similarity.add_argument("assignment")
    similarity.add_argument(
        "--threshold",
        type=_share,
        default=0.5,
        help="report pairs at or above this similarity, 0 to 1 (default 0.5)",
    )
    similarity.add_argument(
        "--out", type=Path, help="where the report goes (default: <course>/reports)"
    )
    return parser


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share in (0, 1], e.g. --threshold 0.5")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number, e.g. --jobs 2")
    return value


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    cores = os.cpu_count() or 1
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        default=cores,
        help=f"submissions graded in parallel (default: one per CPU core, here {cores})",
    )
    parser.add_argument("--no-sandbox", action="store_true", help="run student code unconfined")


def _run(args: argparse.Namespace) -> int:
    from hw_utils.grading import batch, build, check, demo
    from hw_utils.grading.samples import scores_match

    root = find_course_root(args.course_dir)
    if args.command == "build":
        manifest = load_manifest(root)
        for assignment_id in args.assignments or list(manifest):
            if assignment_id not in manifest:
                raise ManifestError(
                    f"Unknown assignment '{assignment_id}' (known: "
                    f"{', '.join(manifest) or 'none'})."
                )
            folder = build.build_release(root, manifest[assignment_id])
            print(f"built {folder.relative_to(root)}/")
        return 0
    if args.command == "check":
        problems = check.check_course(root)
        for problem in problems:
            print(f"problem: {problem}")
        print(f"course check: {len(problems)} problem(s)" if problems else "course check: all good")
        return 1 if problems else 0
    if args.command == "execute":
        manifest = load_manifest(root)
        for assignment_id in args.assignments:
            if assignment_id not in manifest:
                raise ManifestError(f"Unknown assignment '{assignment_id}'.")
            for path in build.execute_source(root, manifest[assignment_id]):
                print(f"executed {path.relative_to(root)} (CI profile)")
        return 0
    if getattr(args, "no_sandbox", False):
        print(UNSANDBOXED_WARNING, file=sys.stderr)
    if args.command == "grade":
        report = batch.grade_batch(
            root,
            args.assignment,
            args.submissions,
            args.out,
            db_url=args.db,
            jobs=args.jobs,
            scheduler=args.scheduler,
            sandbox=not args.no_sandbox,
        )
        print()
        print(batch.format_table(report))
        print(
            f"\nwrote {args.out / 'grades.csv'}, {args.out / 'cells.csv'}, {args.out / 'feedback'}/"
        )
        return 0
    if args.command == "report":
        return _report(root, args)
    if args.command == "similarity":
        return _similarity(root, args)
    if args.command == "demo":
        results = demo.run_demo(
            root,
            args.out or root / "demo",
            args.assignments or None,
            jobs=args.jobs,
            sandbox=not args.no_sandbox,
            all_samples=args.all_samples,
        )
        mismatches = [
            row.student_id
            for report, expected in results
            for row in report.rows
            if row.student_id in expected and not scores_match(row.score, expected[row.student_id])
        ]
        if mismatches:
            print(f"demo: scores differ from the samples' expectations: {', '.join(mismatches)}")
            return 1
        return 0
    raise AssertionError(args.command)


def _report(root: Path, args: argparse.Namespace) -> int:
    from hw_utils.grading import report

    out = args.out or root / "reports"
    if args.all:
        files = report.write_course_report(report.course_report(root, args.db), out)
    else:
        data = report.assignment_report(root, args.assignment, args.grades, args.db)
        files = report.write_assignment_report(data, out)
        worst = data.cells[0] if data.cells else None
        if worst is not None and worst.lost:
            print(
                f"{args.assignment}: median {data.distribution.median:g} of "
                f"{data.distribution.max_score:g}; most failed: {worst.test.grade_id} "
                f"({worst.lost} of {worst.graded} students lost points)"
            )
    print(f"wrote {files.html}, {files.csv}")
    return 0


def _similarity(root: Path, args: argparse.Namespace) -> int:
    from hw_utils.grading import similarity

    data = similarity.similarity_report(root, args.assignment, args.threshold)
    files = similarity.write_similarity_report(data, args.out or root / "reports")
    print(
        f"{args.assignment}: {len(data.pairs)} pair(s) at or above {args.threshold:g} among "
        f"{len(data.codes) - len(data.without_code)} students with code of their own "
        "(no grade was changed)"
    )
    print(f"wrote {files.html}, {files.csv}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "report":
        if bool(args.assignment) == args.all:
            parser.error("course report: name one assignment, or pass --all for the course")
        if args.assignment and args.grades is None:
            parser.error(
                "course report <assignment> needs --grades <folder>: the --out folder of "
                "course grade (its grades.csv)"
            )
    warnings.filterwarnings("ignore", module="nbgrader")
    try:
        return _run(args)
    except EXPECTED_ERRORS as error:
        print(f"course {args.command}: error: {error}", file=sys.stderr)
        return 2
