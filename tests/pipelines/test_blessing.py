"""Blessing decisions: configured thresholds, the trivial baseline without one (fail closed),
no regression against the served model beyond the tolerance."""

import numpy as np

from pipelines import blessing
from pipelines import trivial_baseline
from polyvit_tf.train import metrics as metrics_lib


def test_configured_thresholds_apply():
  d = blessing.decide({'a': {'top1': 0.8}, 'b': {'top1': 0.1, 'map': 0.5}}, None,
                      {'a': 0.7, 'b': 0.4}, tolerance=0.01)
  assert d.blessed
  assert d.reasons[1].startswith('b: map=0.5000 (configured threshold 0.4000')  # mAP for b


def test_below_threshold_is_not_blessed_and_named():
  d = blessing.decide({'a': {'top1': 0.69, 'trivial_top1': 0.1}}, None, {'a': 0.7}, 0.0)
  assert not d.blessed and d.reasons[0].endswith('FAILED')
  assert 'configured threshold 0.7000' in d.reasons[0]


def test_below_chance_is_not_blessed_under_default_thresholds():
  # The default config has threshold 0.0 for every task: 16 % top-1 on 5 balanced classes
  # (chance 20 %) was blessed before; now the trivial baseline applies and fails it.
  candidate = {'good': {'top1': 0.9, 'trivial_top1': 0.2},
               'below_chance': {'top1': 0.16, 'trivial_top1': 0.2}}
  d = blessing.decide(candidate, None, {'good': 0.0, 'below_chance': 0.0}, tolerance=0.02)
  assert not d.blessed
  assert d.reasons == (
      'below_chance: top1=0.1600 (no threshold: must beat the trivial baseline, '
      'majority-class rate 0.2000) FAILED',
      'good: top1=0.9000 (no threshold: must beat the trivial baseline, '
      'majority-class rate 0.2000) ok')


def test_equal_to_chance_is_not_enough_and_map_uses_class_prevalence():
  d = blessing.decide({'a': {'top1': 0.25, 'trivial_top1': 0.25}}, None, {}, 0.0)
  assert not d.blessed
  d = blessing.decide({'tags': {'top1': 0.3, 'map': 0.41, 'trivial_top1': 0.5,
                                'trivial_map': 0.4}}, None, {}, 0.0)
  assert d.blessed and 'class prevalence 0.4000' in d.reasons[0]


def test_unknown_chance_or_nan_metric_fails_closed():
  assert not blessing.decide({'a': {'top1': 0.9}}, None, {}, 0.0).blessed
  d = blessing.decide({'a': {'top1': float('nan'), 'trivial_top1': 0.1}}, None, {}, 0.0)
  assert not d.blessed and 'not a number' in d.reasons[0]
  assert not blessing.decide({}, None, {}, 0.0).blessed


def test_regression_against_the_served_model():
  candidate = {'a': {'top1': 0.80, 'trivial_top1': 0.1}, 'b': {'top1': 0.50, 'trivial_top1': 0.1}}
  baseline = {'a': {'top1': 0.82}, 'b': {'top1': 0.40}}
  assert blessing.decide(candidate, baseline, {}, tolerance=0.03).blessed
  d = blessing.decide(candidate, baseline, {}, tolerance=0.01)
  assert not d.blessed
  failed = [r for r in d.reasons if r.endswith('FAILED')]
  assert len(failed) == 1 and failed[0].startswith('a: top1=0.8000')
  assert 'served model 0.8200, tolerance 0.0100' in failed[0]


def test_a_task_the_served_model_lacks_has_no_regression_check():
  d = blessing.decide({'new': {'top1': 0.5, 'trivial_top1': 0.1}}, {'old': {'top1': 0.9}},
                      {}, 0.0)
  assert d.blessed and 'the served model has no such task' in d.reasons[0]


def test_missing_task_metrics_fail():
  assert not blessing.decide({'a': {'top1': 1.0, 'trivial_top1': 0.1}}, None,
                             {'a': 0.0, 'b': 0.0}, 0.0).blessed


def test_trivial_baseline_is_the_majority_rate_and_the_map_of_a_constant_score():
  rng = np.random.default_rng(0)
  labels = (rng.random((200, 6)) < [0.5, 0.3, 0.1, 0.05, 0.0, 0.2]).astype(np.float32)
  mask = np.ones(200)
  mask[-20:] = 0  # padding is ignored
  base = trivial_baseline.TrivialBaseline(multilabel=True)
  for i in range(0, 200, 64):
    base.update(labels[i:i + 64], mask[i:i + 64])
  kept = labels[:180]
  result = base.result()
  constant = np.ones_like(kept)  # every score tied
  assert result['trivial_map'] == metrics_lib.mean_average_precision(constant, kept)
  assert result['trivial_top1'] == kept.sum(axis=0).max() / 180  # the most frequent class
  single = trivial_baseline.TrivialBaseline(multilabel=False)
  single.update(np.eye(3)[[0, 0, 1, 2, 0]], np.ones(5))
  assert single.result() == {'trivial_top1': 0.6}
  assert np.isnan(trivial_baseline.TrivialBaseline(False).result()['trivial_top1'])
