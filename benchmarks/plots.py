r"""PNG plots of the benchmark results for docs/performance.md.

    python -m benchmarks.plots --results=benchmarks/results --out=docs/performance

Reads train_step.json (and peer.json when present) and writes
  step_efficiency.png   per size and modality: step GFLOP/s / same-run fp32 matmul GFLOP/s,
                        one bar per variant, the 0.8 goal as a line
  peer.png              ours / KerasHub ViT throughput per size and modality, XLA off
                        (and on, when <results>/xla/peer.json exists)
"""

from __future__ import annotations

import os
from typing import Sequence

from absl import app
from absl import flags

from benchmarks import results_io

_RESULTS = flags.DEFINE_string('results', 'benchmarks/results', 'Directory of the JSON results.')
_OUT = flags.DEFINE_string('out', 'docs/performance', 'Directory of the PNG files.')
_SUFFIX = flags.DEFINE_string('suffix', '', "Result file suffix, e.g. '_quick'.")


def _load(name: str, subdir: str = '') -> dict | None:
  return results_io.load(_RESULTS.value, name, subdir, _SUFFIX.value)


def _bars(ax, groups: list[str], series: dict[str, list[float]], goal: float, ylabel: str):
  width = 0.8 / max(1, len(series))
  for i, (label, values) in enumerate(series.items()):
    xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
    ax.bar(xs, [v if v is not None else 0 for v in values], width, label=label)
  ax.axhline(goal, color='black', linestyle='--', linewidth=1, label=f'goal {goal:g}')
  ax.set_xticks(range(len(groups)))
  ax.set_xticklabels(groups, rotation=0, fontsize=8)
  ax.set_ylabel(ylabel)
  top = max([goal] + [v for values in series.values() for v in values if v is not None])
  ax.set_ylim(0, 1.3 * top)  # room for the legend above the bars
  ax.legend(fontsize=8, ncol=len(series) + 1, loc='upper center')


def _save(groups: list[str], series: dict[str, list[float]], goal: float, ylabel: str,
          title: str, path: str) -> str:
  """One bar chart (a bar per series in each group, the goal as a line) written to `path`."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(groups)), 3.6))
  _bars(ax, groups, series, goal, ylabel)
  ax.set_title(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
  return path


def step_efficiency(data: dict, out: str, larger: dict | None = None) -> str:
  """`larger`: train_step_batch8.json, drawn as one more bar per cell it has."""
  rows = data['rows']
  groups = []
  for r in rows:
    g = f'{r["size"]}\n{r["modality"]} {r["tokens"]}'
    if g not in groups:
      groups.append(g)
  variants = list(dict.fromkeys(r['variant'] for r in rows))
  series = {v: [None] * len(groups) for v in variants}
  for r in rows:
    series[r['variant']][groups.index(f'{r["size"]}\n{r["modality"]} {r["tokens"]}')] = (
        r['efficiency'])
  for r in (larger or {}).get('rows', []):
    group = f'{r["size"]}\n{r["modality"]} {r["tokens"]}'
    label = f'{r["variant"]}, batch {r["batch"]}'
    if group in groups:
      series.setdefault(label, [None] * len(groups))[groups.index(group)] = r['efficiency']
  return _save(groups, series, 0.8, 'step GFLOP/s / fp32 matmul GFLOP/s',
               'Training-step efficiency (same-run matmul reference)',
               os.path.join(out, 'step_efficiency.png'))


def peer(data: dict, out: str) -> str:
  rows = data['rows']
  groups = list(dict.fromkeys(f'{r["size"]}\n{r["modality"]} {r["tokens"]}' for r in rows))
  settings = list(dict.fromkeys(r['xla_label'] for r in rows))
  series = {f'XLA {s}': [None] * len(groups) for s in settings}
  for r in rows:
    series[f'XLA {r["xla_label"]}'][groups.index(
        f'{r["size"]}\n{r["modality"]} {r["tokens"]}')] = r['throughput_ratio']
  return _save(groups, series, 1.0, 'ours / KerasHub ViT throughput',
               'Training throughput against KerasHub ViTBackbone (same run)',
               os.path.join(out, 'peer.png'))


def main(argv: Sequence[str]) -> None:
  del argv
  os.makedirs(_OUT.value, exist_ok=True)
  for name, fn in (('train_step', step_efficiency), ('peer', peer)):
    data = _load(name)
    if data is None:
      print(f'no {name}{_SUFFIX.value}.json in {_RESULTS.value}; skipped')
      continue
    extra = {'larger': _load('train_step_batch8')} if name == 'train_step' else {}
    compiled = _load('peer', 'xla') if name == 'peer' else None  # peer --xla=on
    if compiled:
      data['rows'] += compiled['rows']
    print('wrote', fn(data, _OUT.value, **extra))


if __name__ == '__main__':
  app.run(main)
