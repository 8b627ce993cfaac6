"""Imported by every fork server videoml starts (multiprocessing's preload): the server dies with the process that
started it, so that its children, which die with it (:func:`videoml.processes.die_with_parent`), never outlive a
killed run. A fork server otherwise outlives its parent, and so would its workers.

Fork servers started by this one's children (a shard worker's DataLoader) preload this module too.
"""

from multiprocessing import forkserver

from videoml.processes import die_with_parent

die_with_parent()
forkserver.set_forkserver_preload([__name__])
