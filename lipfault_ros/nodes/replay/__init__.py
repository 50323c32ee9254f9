"""Live replay: play a bag into the running pipeline over DDS and score what comes out.

Console script ``replay_node`` (node ``lipfault_replay``, settings as ROS parameters) and
``lipfault replay BAG --model ARTIFACT --out DIR`` (the same settings as options).

Playing works like ``ros2 bag play``: messages go out at their bag (receive) times scaled by
``rate``, from ``start_offset`` seconds into the bag for ``duration`` seconds, ``loops`` times,
on the selected topics (default: the three sensor topics) with optional remapping, and
``/clock`` carries the bag time for nodes running with ``use_sim_time``. On every loop after the
first the header stamps are shifted forward by the played span (``restamp``, the default), so
time keeps increasing and the synchroniser never sees a jump back; with ``restamp`` off the
stamps repeat and the pipeline's synchroniser must reset on the backwards jump (it does: that is
what a looped ``ros2 bag play`` does to it).

Recording: the pipeline's ``fault_status`` (one DiagnosticArray per tuple) and its corrected
topics. Scoring: the bag is also assembled offline with the same synchroniser, giving the tuples
the pipeline *should* have answered; each answer is joined to its tuple by stamp and scored with
exactly the code of offline evaluation (:func:`lipfault_ros.evaluation.live.score_live`), the
flags being the pipeline's lifecycle output (``active`` of its fault status).
Tuples never answered (dropped by the transport, the synchroniser or the latest-only inference
slot) are counted and reported; end-to-end latency is from publishing the tuple's camera frame to
receiving its fault status (it includes the synchroniser's wait for the other streams).

``start_pipeline`` starts the pipeline node in this process (same executor), with the model
given, so one command replays and scores without a second terminal.

Modules: :mod:`~.params` (:class:`ReplayParams`, every setting), :mod:`~.player`
(:class:`ReplayNode`, playing and recording), :mod:`~.session` (:func:`replay`: spin, play, drain,
score), :mod:`~.cli` (``lipfault replay`` and the ``replay_node`` console script); what to play
is read from the bag by the ROS-free :mod:`lipfault_ros.bags.playback`.
"""

from lipfault_ros.evaluation.live import score_live
from lipfault_ros.nodes.replay.cli import add_arguments, main
from lipfault_ros.nodes.replay.replay_params import ReplayParams
from lipfault_ros.nodes.replay.player import NODE_NAME, ReplayNode
from lipfault_ros.nodes.replay.session import replay

__all__ = ['NODE_NAME', 'ReplayNode', 'ReplayParams', 'add_arguments', 'main', 'replay',
           'score_live']
