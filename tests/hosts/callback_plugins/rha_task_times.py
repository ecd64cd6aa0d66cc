"""Ansible callback for tests/hosts/hosts.sh: how long each task took, slowest first."""
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: rha_task_times
type: aggregate
short_description: per-task wall time, the slowest listed at the end of the run
description: per-task wall time, the slowest listed at the end of the run
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "rha_task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.times = []
        self.current = None

    def _close(self):
        if self.current is not None:
            name, start = self.current
            self.times.append((time.monotonic() - start, name))
            self.current = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self.current = (task.get_name(), time.monotonic())

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_stats(self, stats):
        self._close()
        self._display.display("TASK TIMES (slowest 12, s):")
        for secs, name in sorted(self.times, reverse=True)[:12]:
            self._display.display("  %6.1f  %s" % (secs, name))
