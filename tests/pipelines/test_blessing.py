"""Blessing decisions: thresholds per task, no regression beyond the tolerance."""

from pipelines import blessing


def test_first_run_needs_only_thresholds():
  d = blessing.decide({'a': {'top1': 0.8}, 'b': {'top1': 0.1, 'map': 0.5}}, None,
                      {'a': 0.7, 'b': 0.4}, tolerance=0.01)
  assert d.blessed
  assert any(r.startswith('b: map=0.5000') for r in d.reasons)  # multi-label uses mAP


def test_below_threshold_is_not_blessed_and_named():
  d = blessing.decide({'a': {'top1': 0.69}}, None, {'a': 0.7}, tolerance=0.0)
  assert not d.blessed and d.reasons[0].endswith('FAILED')


def test_regression_against_baseline():
  candidate = {'a': {'top1': 0.80}, 'b': {'top1': 0.50}}
  baseline = {'a': {'top1': 0.82}, 'b': {'top1': 0.40}}
  assert blessing.decide(candidate, baseline, {}, tolerance=0.03).blessed
  d = blessing.decide(candidate, baseline, {}, tolerance=0.01)
  assert not d.blessed
  assert [r for r in d.reasons if r.endswith('FAILED')][0].startswith('a: top1=0.8000')


def test_missing_task_metrics_fail():
  assert not blessing.decide({'a': {'top1': 1.0}}, None, {'a': 0.0, 'b': 0.0}, 0.0).blessed
