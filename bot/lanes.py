"""Incoming events handled concurrently across chats, in order within a chat, staff first.

Every transport receives events in batches (Telegram's getUpdates, Matrix's sync, webhook
requests arriving side by side) and hands each to ``Lanes.put`` with a key (its chat) and
a lane (staff or public). The lanes run them on a bounded number of workers:

* **In order within a key.** A key's events run one at a time, in the order they were put:
  a person's second answer is never handled before their first, and the replies of the
  first (sent before ``Core.handle`` returns) come before the second is even read.
* **Concurrently across keys.** Up to ``workers`` keys at once: while one event's replies
  travel, others' transactions run. The database still runs one transaction at a time
  (``Database.transaction``): the lanes overlap waiting, not SQLite.
* **Staff first.** A worker always takes a key with a staff event waiting before any public
  one, whatever the public backlog. A key holding a staff event behind public ones is
  promoted as a whole: order within the chat comes first.
* **Fair to the public.** Public keys take turns, one event per turn, so one chatty person
  cannot hold the others back.
* **Bounded.** ``room`` lets a receiver wait before fetching more while ``capacity`` events
  are waiting or running, so a spike stays where it came from (Telegram's queue, the
  homeserver) instead of growing the bot's memory.

The lanes know nothing of platforms or the core: a job is any coroutine function. Each
``put`` returns a future that is done once the job has run (a job's exception is logged,
not raised: the receiver only needs to know that the event is behind it), or cancelled if
``close`` dropped it before it ran.

Workers are tasks started on demand and ended when nothing is ready. They are started by
``put``, so the caller must not be inside a database transaction (a task inherits the
transaction's context variable).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from enum import Enum

from bot.domain import ChatRef, Identity

log = logging.getLogger(__name__)

WORKERS = 16  # events handled at once: enough to overlap replies in flight
CAPACITY = 4096  # events waiting or running before receivers stop fetching more

Job = Callable[[], Awaitable[None]]


class Lane(Enum):
    STAFF = "staff"  # officers' channels and people with a role
    PUBLIC = "public"


# Whether an event (who, where) is staff's: ``Core.from_staff``, given to each transport.
StaffTest = Callable[[Identity, ChatRef], bool]


def nobody(sender: Identity, chat: ChatRef) -> bool:
    """The staff test of a transport started without one (tests, tools): all public."""
    return False


def lane_of(staff: StaffTest, sender: Identity, chat: ChatRef) -> Lane:
    return Lane.STAFF if staff(sender, chat) else Lane.PUBLIC


@dataclass(slots=True)
class _Waiting:
    lane: Lane
    job: Job
    done: asyncio.Future[None]


@dataclass(slots=True)
class _Queue:
    """One key's events, oldest first."""

    items: deque[_Waiting] = field(default_factory=deque)
    staff: int = 0  # staff events among items
    running: bool = False
    ready_in: Lane | None = None  # the ready line that holds this key, if any


class Lanes:
    def __init__(self, workers: int = WORKERS, capacity: int = CAPACITY,
                 name: str = "lanes") -> None:
        if workers < 1 or capacity < 1:
            raise ValueError("lanes need at least one worker and room for one event")
        self.workers = workers
        self.capacity = capacity
        self.name = name
        self._queues: dict[Hashable, _Queue] = {}
        # Keys with an event ready to run, per lane; an entry is stale when its queue has
        # since moved to the other line (promotion) or is running.
        self._ready: dict[Lane, deque[Hashable]] = {lane: deque() for lane in Lane}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = 0  # events waiting or running
        self._freed = asyncio.Event()
        self._closed = False

    @property
    def pending(self) -> int:
        """Events put and not yet finished (waiting or running)."""
        return self._pending

    def free(self) -> int:
        """How many more events fit before the lanes are full."""
        return max(self.capacity - self._pending, 0)

    async def room(self, wanted: int = 1) -> None:
        """Wait until ``wanted`` more events fit (or until nothing is pending: a batch
        larger than the capacity still goes, one at a time)."""
        wanted = min(max(wanted, 1), self.capacity)
        while self._pending and self._pending + wanted > self.capacity:
            self._freed.clear()
            await self._freed.wait()

    def put(self, key: Hashable, lane: Lane, job: Job) -> asyncio.Future[None]:
        """Queue ``job`` behind the key's earlier events; never waits (see ``room``)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._closed:
            done.cancel()
            return done
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue()
        queue.items.append(_Waiting(lane, job, done))
        if lane is Lane.STAFF:
            queue.staff += 1
        self._pending += 1
        self._make_ready(key, queue)
        self._spawn()
        return done

    async def submit(self, key: Hashable, lane: Lane, job: Job) -> None:
        """Wait for room, queue ``job`` and wait until it has run (a webhook answers then)."""
        await self.room()
        await self.put(key, lane, job)

    async def join(self) -> None:
        """Wait until every event put so far has run."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self) -> None:
        """Drop the events not started (their futures are cancelled: the platform will bring
        them again) and wait for those running to finish. Further puts are refused."""
        self._closed = True
        for queue in self._queues.values():
            while queue.items:
                waiting = queue.items.popleft()
                waiting.done.cancel()
                self._pending -= 1
            queue.staff = 0
        for line in self._ready.values():
            line.clear()
        self._freed.set()
        await self.join()

    def reopen(self) -> None:
        """Accept events again after ``close`` (a transport started anew)."""
        self._closed = False

    # -- workers ----------------------------------------------------------------------

    def _make_ready(self, key: Hashable, queue: _Queue) -> None:
        if queue.running or not queue.items:
            return
        lane = Lane.STAFF if queue.staff else Lane.PUBLIC
        if queue.ready_in is lane:
            return
        # Promotion leaves a stale entry in the public line; _next skips it.
        queue.ready_in = lane
        self._ready[lane].append(key)

    def _next(self) -> tuple[Hashable, _Queue] | None:
        for lane in (Lane.STAFF, Lane.PUBLIC):
            line = self._ready[lane]
            while line:
                key = line.popleft()
                queue = self._queues.get(key)
                if queue is not None and queue.ready_in is lane:
                    queue.ready_in = None
                    return key, queue
        return None

    def _spawn(self) -> None:
        ready = len(self._ready[Lane.STAFF]) + len(self._ready[Lane.PUBLIC])
        while len(self._tasks) < self.workers and ready > 0:
            self._tasks.add(asyncio.create_task(self._work(), name=f"{self.name}-worker"))
            ready -= 1

    async def _work(self) -> None:
        try:
            await self._run_ready()
        finally:
            # At once, not in a done callback: a put() between this worker's last look and
            # the callback would count it as running and start no other.
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)

    async def _run_ready(self) -> None:
        while (found := self._next()) is not None:
            key, queue = found
            waiting = queue.items.popleft()
            if waiting.lane is Lane.STAFF:
                queue.staff -= 1
            queue.running = True
            try:
                await waiting.job()
            except asyncio.CancelledError:
                waiting.done.cancel()
                raise
            except Exception:
                log.exception("%s: an event could not be handled", self.name)
            finally:
                queue.running = False
                self._pending -= 1
                self._freed.set()
                if not waiting.done.done():
                    waiting.done.set_result(None)
                if queue.items:
                    self._make_ready(key, queue)  # at the back of its line: one per turn
                elif self._queues.get(key) is queue:
                    del self._queues[key]
