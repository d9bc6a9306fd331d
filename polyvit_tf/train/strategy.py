"""The tf.distribute strategy of a run, from `config.distribution`.

  default       one device (tf.distribute.get_strategy())
  mirrored      MirroredStrategy over the local GPUs, or over `num_cpu_devices` logical CPUs
  multi_worker  MultiWorkerMirroredStrategy; the cluster comes from the TF_CONFIG variable
  tpu           TPUStrategy on the TPU named by `distribution.tpu` ('local' for a TPU VM)
  auto          tpu if `tpu` is set, multi_worker if TF_CONFIG names more than one task,
                mirrored if there is more than one local device, default otherwise.
Create the strategy before any other TensorFlow work (multi-worker and TPU initialise the
runtime, and logical CPU devices can only be configured before it starts).
"""

from __future__ import annotations

import json
import os

import ml_collections
import tensorflow as tf

from polyvit_tf.configs import base
from polyvit_tf.configs import specs as specs_lib

STRATEGIES = base.STRATEGIES
_STRATEGIES: dict = {}


def configure_cpu_devices(count: int) -> None:
  """Splits the host CPU into `count` logical devices (only before TensorFlow starts)."""
  if count <= 1:
    return
  cpu = tf.config.list_physical_devices('CPU')[0]
  try:
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
  except RuntimeError as e:
    have = len(tf.config.list_logical_devices('CPU'))
    if have != count:
      raise RuntimeError(
          f'distribution.num_cpu_devices={count}: TensorFlow already started with {have} '
          'CPU device(s); logical devices must be configured before any TensorFlow op runs '
          '(start a fresh process).') from e


def _tf_config_tasks() -> int:
  cluster = json.loads(os.environ.get('TF_CONFIG', '{}') or '{}').get('cluster', {})
  return sum(len(v) for k, v in cluster.items() if k in ('chief', 'worker'))


def _local_devices() -> list[str]:
  gpus = tf.config.list_logical_devices('GPU')
  if gpus:
    return [d.name for d in gpus]
  return [d.name for d in tf.config.list_logical_devices('CPU')]


def from_config(config: ml_collections.ConfigDict) -> tf.distribute.Strategy:
  """The strategy `config.distribution` asks for (see the module docstring)."""
  d = specs_lib.resolve(config).distribution
  configure_cpu_devices(d.num_cpu_devices)
  name = d.strategy
  if name == 'auto':
    if d.tpu:
      name = 'tpu'
    elif _tf_config_tasks() > 1:
      name = 'multi_worker'
    elif len(_local_devices()) > 1:
      name = 'mirrored'
    else:
      name = 'default'
  if name == 'default':
    return tf.distribute.get_strategy()
  # One strategy object per kind and process: several MirroredStrategy instances in one
  # process reuse the same collective instance keys, and the second one's all-reduces then
  # fail with "Shape mismatch in the collective instance"; multi-worker and TPU strategies
  # initialise the runtime once anyway.
  key = (name, d.tpu)  # (listing devices here would start TF before multi-worker setup)
  if key not in _STRATEGIES:
    if name == 'mirrored':
      _STRATEGIES[key] = tf.distribute.MirroredStrategy(devices=_local_devices())
    elif name == 'multi_worker':
      _STRATEGIES[key] = tf.distribute.MultiWorkerMirroredStrategy()
    else:
      resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=d.tpu)
      tf.config.experimental_connect_to_cluster(resolver)
      tf.tpu.experimental.initialize_tpu_system(resolver)
      _STRATEGIES[key] = tf.distribute.TPUStrategy(resolver)
  return _STRATEGIES[key]


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
  """True when the strategy spans several worker processes (collectives across hosts)."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  if resolver is None or isinstance(strategy, tf.distribute.TPUStrategy):
    return False
  spec = resolver.cluster_spec().as_dict()
  return sum(len(v) for k, v in spec.items() if k in ('chief', 'worker')) > 1


def describe(strategy: tf.distribute.Strategy) -> str:
  return f'{type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s)'


def adapt_dataset(dataset: tf.data.Dataset, strategy: tf.distribute.Strategy) -> tf.data.Dataset:
  """Per-strategy tf.data options for the datasets the trainer distributes.

  Under MultiWorkerMirroredStrategy (TF 2.16) the tf.data autotuning thread of an iterator is
  not woken when the iterator is destroyed: destruction (and process exit) then waits out
  the current autotune period, up to a minute per iterator (measured: 8 to 98 s per deleted
  training iterator, ~45 s at exit). Autotuning is therefore switched off there
  (AUTOTUNE parallelism falls back to TensorFlow's static defaults).
  """
  if is_multi_worker(strategy):
    options = tf.data.Options()
    options.autotune.enabled = False
    dataset = dataset.with_options(options)
  return dataset


def is_tpu(strategy: tf.distribute.Strategy) -> bool:
  """A TPU strategy: `strategy.run` compiles the replica function as one XLA computation
  itself (so the step functions pass it the plain function, not a jit_compile one)."""
  return isinstance(strategy, (tf.distribute.TPUStrategy,
                               tf.distribute.experimental.TPUStrategy))


def compiles_replica_steps(strategy: tf.distribute.Strategy) -> bool:
  """Whether a training step of `strategy` can compile WHOLE per replica (jit_compile over
  forward, backward, all-reduce, clipping and the update), as a TPU compiles it: one
  replica; TPUStrategy (its replica step is always one XLA computation); a (multi-worker)
  mirrored strategy over GPUs only, where TensorFlow runs the jit_compile replica function
  per device and all-reduces with collectives instead of merge_call. Over several CPU
  devices TensorFlow lifts the function into one computation spanning every device, which
  XLA rejects (a variable on another device), and a nested tf.function may not hold
  merge_call, so there only the forward/backward pass compiles."""
  if strategy.num_replicas_in_sync == 1 or is_tpu(strategy):
    return True
  return all(tf.DeviceSpec.from_string(d).device_type == 'GPU'
             for d in strategy.extended.worker_devices)
