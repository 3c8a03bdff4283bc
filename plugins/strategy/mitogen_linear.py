"""Mitogen's linear strategy under its own name, found through ansible.cfg's strategy_plugins.

Mitogen keeps one Python interpreter per host for the whole run and sends each task to it as a
message, instead of a new `docker exec` or SSH command and a fresh interpreter per task
(docs/decisions/0015-mitogen.md). The strategy itself is Mitogen's, imported from the pinned
package; this file only makes it loadable without a path into the virtualenv.
"""

from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
