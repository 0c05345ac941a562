"""Where raw rows come from, behind one function: the demo generator, a CSV/Parquet file (a
local path or an fsspec URL such as `s3://bucket/events.parquet`), or a SQL query on a database
whose SQLAlchemy URL is read from an environment variable."""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from itertools import islice
from pathlib import Path
from typing import IO, cast

import fsspec  # type: ignore[import-untyped]
import pandas as pd
import pyarrow.parquet as pq

from ..backends import without_password
from ..config import ConfigError, DemoSourceConfig, FileSourceConfig, Project, SqlSourceConfig
from ..errors import ProjectError
from ..files import written_whole
from .demo import generate_demo
from .schema import MAX_TEXT_CHARS, shown_value


class DataError(ProjectError, ValueError):
    """Input data cannot be used: missing file, unreadable format, wrong columns, too few rows."""


# A local file, or an fsspec URL: text, since `Path` would turn `s3://b/k` into `s3:/b/k`.
Location = Path | str
TABLE_SUFFIXES = (".csv", ".parquet")
# The separators a CSV file may use; `csv_delimiter` detects one of them.
DELIMITERS = (",", ";", "\t", "|")
SNIFFED_LINES = 50
# csv.Sniffer's regular expressions take about a second per megabyte: one 10 MB cell made every
# read of its file ten seconds slower. A delimiter shows as well in the other lines.
SNIFFED_LINE_CHARS = 65_536  # a longer line is left out of the sample (the header never is)
SNIFFED_CHARS = 262_144  # the sample stops growing here


def is_url(location: Location) -> bool:
    """`scheme://...`, or fsspec's chained `simplecache::s3://...`: read through fsspec."""
    if isinstance(location, Path):
        return False
    scheme, separator, _ = location.partition("://")
    return (
        bool(separator) and scheme[:1].isalpha() and all(c.isalnum() or c in "+-.:" for c in scheme)
    )


def shown_location(location: Location) -> str:
    """A location as messages and manifests show it, with any password in a URL hidden."""
    return without_password(str(location))


def source_location(project: Project, source: FileSourceConfig) -> Location:
    """Where a file source's rows are: its URL as written, or its path within the project."""
    return source.path if is_url(source.path) else project.path(source.path)


def _check_protocols(url: str) -> None:
    """Refuse a URL whose scheme fsspec does not know, or whose filesystem package is missing,
    by name: fsspec's own error surfaces as a bare ImportError from deep inside a read."""
    for part in url.split("::"):
        protocol = part.partition("://")[0]
        try:
            fsspec.get_filesystem_class(protocol)
        except ImportError as error:  # fsspec's, raised from the import that failed
            module = getattr(error.__cause__, "name", None)
            package = str(module).split(".")[0] if module else None
            needed = (
                f"the Python package {package}, which is not installed: add it to the "
                f"environment (pip install {package})"
                if package
                else str(error)
            )
            raise DataError(
                f"data file {shown_location(url)}: reading {protocol}:// URLs needs {needed}"
            ) from None
        except ValueError:
            raise DataError(
                f"data file {shown_location(url)}: {protocol}:// is no protocol fsspec knows; "
                "write a local path without a scheme, or a URL such as s3://bucket/events.csv"
            ) from None


def _opened(location: Location) -> AbstractContextManager[IO[bytes]]:
    """The file's bytes, from the local disk or, for a URL, through fsspec."""
    if is_url(location):
        _check_protocols(str(location))
        return cast(AbstractContextManager[IO[bytes]], fsspec.open(str(location), "rb"))
    return Path(location).open("rb")


def _size(location: Location) -> int:
    """The file's size in bytes; DataError when it does not exist or cannot be reached."""
    shown, url = shown_location(location), is_url(location)
    if url:
        _check_protocols(str(location))  # before the `try`: its DataError is a ValueError
    try:
        if not url:
            return Path(location).stat().st_size
        filesystem, inner = fsspec.core.url_to_fs(str(location))
        return int(filesystem.size(inner))
    except FileNotFoundError:
        raise DataError(f"data file {shown}: no such file") from None
    except (OSError, ValueError) as error:
        raise DataError(f"data file {shown} cannot be reached: {error}") from None


def _suffix(location: Location) -> str:
    return Path(Path(str(location)).name).suffix.lower()


def _shown_delimiter(delimiter: str) -> str:
    return "tab" if delimiter == "\t" else repr(delimiter)


def csv_delimiter(location: Location, configured: str | None = None) -> str:
    """The configured delimiter, else the one `csv.Sniffer` finds on the first lines among
    `DELIMITERS`, else `,`: batch scoring and ingest read a file the same way."""
    if configured is not None:
        return configured
    with (
        _opened(location) as binary,
        io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="") as file,
    ):
        lines = list(islice(file, SNIFFED_LINES))
    sample, size = lines[:1], sum(map(len, lines[:1]))
    for line in lines[1:]:
        if len(line) > SNIFFED_LINE_CHARS:
            continue
        size += len(line)
        if size > SNIFFED_CHARS:
            break
        sample.append(line)
    try:
        return csv.Sniffer().sniff("".join(sample), delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:  # one column, or too few lines to tell
        return ","


def check_header(location: Location, columns: Sequence[object], delimiter: str) -> None:
    """Refuse a header read as one column when it holds another delimiter: the file was split
    on the wrong character, and every row would otherwise fail as "missing columns"."""
    if len(columns) != 1:
        return
    header = str(columns[0])
    if found := [d for d in DELIMITERS if d != delimiter and d in header]:
        likely = found[0]
        raise DataError(
            f"data file {shown_location(location)}: the header parsed as one column with "
            f"delimiter {_shown_delimiter(delimiter)}, but the file looks "
            f"{_shown_delimiter(likely)}-separated: set data.source.delimiter to {likely!r}"
        )


def check_names(where: str, names: Sequence[object]) -> None:
    """Refuse column names that repeat, naming them and where they stand, and names too long to
    be one. pandas reads a repeated CSV header as `spend` and `spend.1` and a query's repeated
    name as two columns of one name: either way the rows would be read, and trained on, as
    something other than the file or the query says."""
    places: defaultdict[str, list[int]] = defaultdict(list)
    for place, name in enumerate(names, start=1):
        if isinstance(name, str) and name:  # a blank name is pandas' `Unnamed: N`, each apart
            places[name].append(place)
    if repeated := {name: found for name, found in places.items() if len(found) > 1}:
        shown = "; ".join(
            f"{shown_value(name)} (columns {', '.join(map(str, found))})"
            for name, found in repeated.items()
        )
        raise DataError(
            f"{where}: column names repeat: {shown}. Each column needs a name of its own: "
            "rename or drop the repeats"
        )
    if long := [name for name in places if len(name) > MAX_TEXT_CHARS]:
        raise DataError(
            f"{where}: the column name {shown_value(long[0])} is longer than the "
            f"{MAX_TEXT_CHARS:,} characters a name may have"
        )


def csv_header(location: Location, delimiter: str) -> list[object]:
    """A CSV file's header as written: pandas renames a repeated name when it reads the rows."""
    with _opened(location) as file:
        first = pd.read_csv(
            file, sep=delimiter, header=None, nrows=1, dtype=str, keep_default_na=False
        )
    return list(first.iloc[0]) if len(first) else []


@contextmanager
def _readable(where: str) -> Iterator[None]:
    """A file its parser cannot read is a DataError naming it, with the parser's reason."""
    try:
        yield
    except DataError:
        raise
    except (ValueError, OSError) as error:
        raise DataError(f"{where} cannot be read: {error}") from None


def read_table(location: Location, delimiter: str | None = None) -> pd.DataFrame:
    """Read CSV as text (validation then sees exactly what the file holds) or Parquet, from a
    local path or an fsspec URL.

    A CSV file's delimiter is `delimiter`, or detected when None (see `csv_delimiter`).
    """
    shown = shown_location(location)
    size = _size(location)
    suffix = _suffix(location)
    if suffix in TABLE_SUFFIXES and size == 0:
        raise DataError(f"data file {shown} is empty: not even a header")
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"data file {shown}: expected .csv or .parquet")
    where = f"data file {shown}"
    with _readable(where):
        if suffix == ".parquet":
            with _opened(location) as file:
                names: list[object] = list(pq.read_schema(file).names)
        else:
            separator = csv_delimiter(location, delimiter)
            names = csv_header(location, separator)
    check_names(where, names)
    with _readable(where):
        if suffix == ".parquet":
            with _opened(location) as file:
                return pd.read_parquet(file)
        with _opened(location) as file:
            frame = pd.read_csv(
                file, sep=separator, dtype=str, keep_default_na=False, na_values=[""]
            )
    check_header(location, list(frame.columns), separator)
    return frame


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write beside `path`, then rename: an interrupted write never leaves half a file there."""
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        raise DataError(f"{path}: expected .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(path) as partial:
        if suffix == ".csv":
            frame.to_csv(partial, index=False)
        else:
            # Parquet columns have one type: a column mixing numbers and text is stored as text.
            mixed = [name for name in frame.columns if frame[name].dtype == object]
            text = {name: frame[name].map(lambda v: v if pd.isna(v) else str(v)) for name in mixed}
            frame.assign(**text).to_parquet(partial, index=False)


def shown_database(url: str) -> str:
    """A SQLAlchemy URL fit for manifests and logs: the password, also one passed as a query
    parameter (`?password=...`), hidden."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    hidden = {key: "***" for key in parsed.query if "password" in key.lower()}
    shown = parsed.update_query_dict(hidden).render_as_string(hide_password=True)
    return shown.replace("%2A%2A%2A", "***")  # the query's "***", unquoted


def _database_url(project: Project, source: SqlSourceConfig) -> str:
    """The database's URL, from the environment only: credentials never sit in a config file."""
    import sqlalchemy as sa

    url = os.environ.get(source.url_env, "").strip()  # an unset CI secret arrives as ""
    if not url:
        raise ConfigError(
            f"the sql source reads its database's SQLAlchemy URL from the environment variable "
            f"{source.url_env} (data.source.url_env in {project.config_name}), which is not set: "
            f"set it, e.g. from a CI secret, to dialect://user:password@host:port/database"
        )
    try:
        sa.make_url(url)
    except sa.exc.ArgumentError:  # its message would not help, and the value must not be shown
        raise ConfigError(
            f"the environment variable {source.url_env} (data.source.url_env in "
            f"{project.config_name}) holds no SQLAlchemy URL: expected "
            "dialect://user:password@host:port/database"
        ) from None
    return url


def _database_error(error: BaseException, password: str | None) -> str:
    """The database's own message, on one line: not pandas' and SQLAlchemy's wrappings of it
    with the statement and a link, and never the password."""
    import sqlalchemy as sa

    if isinstance(error, pd.errors.DatabaseError) and error.__cause__ is not None:
        error = error.__cause__  # pandas wraps a failed query's SQLAlchemy error
    cause = error.orig if isinstance(error, sa.exc.DBAPIError) else error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    message = lines[0] if lines else type(cause).__name__
    return message.replace(password, "***") if password else message


def read_sql(project: Project, source: SqlSourceConfig) -> tuple[pd.DataFrame, str]:
    """The query's rows, typed as the database types them, and a description without the
    password. SQLAlchemy is imported here: a serving process never reads a database source."""
    import sqlalchemy as sa

    url = _database_url(project, source)
    database = shown_database(url)
    query = " ".join(source.query.split())
    engine: sa.Engine | None = None
    try:
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            frame = pd.read_sql_query(sa.text(source.query), connection)
    except ImportError as error:
        raise DataError(
            f"the sql source cannot connect to {database}: its driver is not installed "
            f"({error}); add it to the environment, e.g. psycopg for postgresql://"
        ) from None
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as error:
        raise DataError(
            f"the sql source cannot read data.source.query from {database} (the URL in "
            f"{source.url_env}): {_database_error(error, sa.make_url(url).password)}"
        ) from None
    finally:
        if engine is not None:
            engine.dispose()
    check_names(f"the sql source's data.source.query on {database}", list(frame.columns))
    return frame, f"sql({database}: {query})"


def load_source(project: Project) -> tuple[pd.DataFrame, str]:
    """The raw rows and a one-line description of the source, never with a password
    (`project_schema` gives the schema that governs them)."""
    source = project.config.data.source
    if isinstance(source, DemoSourceConfig):
        task = project.config.train.task
        description = (
            f"demo(rows={source.rows}, seed={source.seed}, start={source.start}, "
            f"covariate_shift={source.covariate_shift}, concept_shift={source.concept_shift})"
        )
        return generate_demo(source, task), description
    if isinstance(source, SqlSourceConfig):
        return read_sql(project, source)
    location = source_location(project, source)
    return read_table(location, source.delimiter), f"file({shown_location(source.path)})"
