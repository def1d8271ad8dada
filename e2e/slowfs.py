"""A slow disk: a FUSE pass-through of a folder that delays every open and read (libfuse 3 through mfusepy).

Run as its own process: ``python -m e2e.slowfs SOURCE MOUNTPOINT DELAY_SECONDS``; ``SlowMount`` starts it, waits
for the mount and unmounts and stops it by PID. Writes pass through undelayed (a read node does not write).
The kernel drops a file's cached pages when it is opened again, so every load of a segment file pays the delay.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.waiting import poll_for

log = logging.getLogger(__name__)


def _operations(source: str, delay: float) -> Any:
    import mfusepy  # imported in the mount process only

    class SlowPassthrough(mfusepy.Operations):
        use_ns = True

        def _p(self, path: str) -> str:
            return os.path.join(source, path.lstrip("/"))

        def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
            try:
                st = os.lstat(self._p(path))
            except OSError as exc:
                raise mfusepy.FuseOSError(exc.errno or errno.EIO) from None
            keys = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime_ns", "st_mtime_ns",
                    "st_ctime_ns")
            out = {k: getattr(st, k) for k in keys}
            for k in ("st_atime", "st_mtime", "st_ctime"):
                out[k] = out.pop(k + "_ns")
            return out

        def readdir(self, path: str, fh: int) -> list[str]:
            return [".", "..", *os.listdir(self._p(path))]

        def open(self, path: str, flags: int) -> int:
            time.sleep(delay)  # the slow disk
            return os.open(self._p(path), flags)

        def create(self, path: str, mode: int, fi: Any = None) -> int:
            return os.open(self._p(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            time.sleep(delay)  # the slow disk
            return os.pread(fh, size, offset)

        def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
            return os.pwrite(fh, data, offset)

        def truncate(self, path: str, length: int, fh: int | None = None) -> None:
            os.truncate(self._p(path), length)

        def flush(self, path: str, fh: int) -> None:
            return None

        def fsync(self, path: str, datasync: int, fh: int) -> None:
            os.fsync(fh)

        def release(self, path: str, fh: int) -> None:
            os.close(fh)

        def mkdir(self, path: str, mode: int) -> None:
            os.mkdir(self._p(path), mode)

        def rmdir(self, path: str) -> None:
            os.rmdir(self._p(path))

        def unlink(self, path: str) -> None:
            os.unlink(self._p(path))

        def rename(self, old: str, new: str) -> None:
            os.rename(self._p(old), self._p(new))

        def chmod(self, path: str, mode: int) -> None:
            os.chmod(self._p(path), mode)

        def utimens(self, path: str, times: tuple[int, int] | None = None) -> None:
            if times is None:
                os.utime(self._p(path))
            else:
                os.utime(self._p(path), ns=times)

        def statfs(self, path: str) -> dict[str, int]:
            st = os.statvfs(self._p(path))
            return {k: getattr(st, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                                                  "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    return SlowPassthrough()


def main(argv: list[str]) -> None:
    import mfusepy

    source, mountpoint, delay = argv[0], argv[1], float(argv[2])
    mfusepy.FUSE(_operations(source, delay), mountpoint, foreground=True, nothreads=False)


class SlowMount:
    """``source`` seen at ``mountpoint`` with ``delay`` seconds added to every open and read."""

    def __init__(self, source: Path, mountpoint: Path, delay: float, log_path: Path) -> None:
        self.source, self.mountpoint, self.delay, self.log_path = source, mountpoint, delay, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SlowMount:
        self.source.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        root = Path(__file__).resolve().parents[1]
        env = {**os.environ, "PYTHONPATH": str(root)}
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "e2e.slowfs", str(self.source), str(self.mountpoint),
                                          str(self.delay)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)

        def mounted() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"slowfs exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            return os.path.ismount(self.mountpoint)

        try:
            poll_for(mounted, 30, interval=0.05, what=f"the slow mount at {self.mountpoint}")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if os.path.ismount(self.mountpoint):
            done = subprocess.run(["umount", str(self.mountpoint)], capture_output=True, timeout=30)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True, timeout=30)
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


if __name__ == "__main__":
    main(sys.argv[1:])
