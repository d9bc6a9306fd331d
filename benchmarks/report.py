r"""Markdown tables of the benchmark results (the tables of docs/performance.md).

    python -m benchmarks.report --results=benchmarks/results [--suffix=_quick]

Reads the JSON files the benchmark scripts wrote and prints one section per file that
exists, with the goal each figure is judged against.
"""

from __future__ import annotations

from typing import Sequence

from absl import app
from absl import flags

from benchmarks import results_io

_RESULTS = flags.DEFINE_string('results', 'benchmarks/results', 'Directory of the JSON results.')
_SUFFIX = flags.DEFINE_string('suffix', '', "Result file suffix, e.g. '_quick'.")


def _load(name: str, subdir: str = '') -> dict | None:
  return results_io.load(_RESULTS.value, name, subdir, _SUFFIX.value)


def _table(header: list[str], rows: list[list]) -> str:
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
  lines += ['| ' + ' | '.join(str(c) for c in r) + ' |' for r in rows]
  return '\n'.join(lines)


def _f(x, fmt='.2f'):
  return '-' if x is None else format(x, fmt)


def machine(data: dict) -> str:
  m = data['machine']
  return (f'{m["cpus"]} CPUs ({m["model_name"]}), flags {", ".join(m["flags"])}; '
          f'TF {m["tensorflow"]}, Keras {m["keras"]}; load average at the end '
          f'{", ".join(f"{x:.1f}" for x in m.get("load_average", []))} ({data["time"]})')


def train_step(data: dict) -> str:
  fp32 = {(r['size'], r['modality']): r for r in data['rows'] if r['variant'] == 'fp32'}
  rows = []
  for r in data['rows']:
    base = fp32.get((r['size'], r['modality']))
    norm = r['efficiency'] / base['efficiency'] if base else None
    raw = base['step_seconds'] / r['step_seconds'] if base else None
    rows.append([r['size'], r['modality'], r['tokens'], r['variant'], r['batch'],
                 _f(r['step_gflop'], '.1f'), _f(r['step_seconds'], '.2f'),
                 _f(r['achieved_gflops'], '.1f'), _f(r['matmul_gflops'], '.1f'),
                 f'**{r["efficiency"]:.2f}**', _f(r['efficiency_vs_mean']), _f(norm), _f(raw)])
  return _table(['size', 'modality', 'tokens', 'variant', 'batch', 'GFLOP/step', 's/step',
                 'step GFLOP/s', 'matmul GFLOP/s (best call)', 'ratio', 'ratio vs burst mean',
                 'vs fp32 (normalised)', 'vs fp32 (raw time)'], rows)


def peer(data: dict) -> str:
  rows = [[r['size'], r['modality'], r['tokens'], r['xla_label'], r['batch'],
           _f(r['ours_seconds']), _f(r['peer_seconds']), _f(r['ours_gflops'], '.1f'),
           _f(r['peer_gflops'], '.1f'), f'**{r["throughput_ratio"]:.2f}**',
           ', '.join(f'{x:.2f}' for x in r['throughput_ratio_all'])] for r in data['rows']]
  return _table(['size', 'modality', 'tokens', 'XLA', 'batch', 'ours s/step', 'peer s/step',
                 'ours GFLOP/s', 'peer GFLOP/s', 'ours / peer throughput', 'per pair'], rows)


def cotraining(data: dict) -> str:
  rows = []
  for r in data['rows']:
    ratios = sorted(r['throughput_ratio_all'])
    q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
    rows.append([r['idle_params'], r['steps_per_round'], r['rounds'],
                 _f(r['co_examples_per_second'], '.1f'),
                 _f(r['separate_examples_per_second'], '.1f'),
                 f'**{r["throughput_ratio"]:.3f}**', f'{q1:.2f} - {q3:.2f}',
                 _f(r.get('throughput_ratio_totals'), '.3f'), _f(r.get('wall_ratio'), '.3f'),
                 f'{100 * r["overhead"]:+.1f} %'])
  return _table(['idle_params', 'steps/round', 'rounds', 'co-training ex/s', 'separate ex/s',
                 'ratio (median of rounds)', 'interquartile range', 'ratio of totals',
                 'wall-clock ratio (fixed costs included)', 'overhead'], rows)


def input_pipeline(data: dict) -> str:
  rows = []
  for r in data['rows']:
    rates = r['pipeline_examples_per_second']
    rows.append([r['modality'], r['task'], r['batch']] +
                [_f(v, '.0f') for v in rates.values()] +
                [_f(r.get('model_examples_per_second'), '.0f'),
                 f'**{r["headroom"]:.2f}**' if 'headroom' in r else '-'])
  settings = list(data['rows'][0]['pipeline_examples_per_second']) if data['rows'] else []
  return _table(['modality', 'task', 'batch'] + [f'pipeline ex/s, {s} call(s)' for s in settings]
                + ['model ex/s (train step)', 'best pipeline / model'], rows)


def export(data: dict) -> str:
  dep = data['deployable']
  quants = [v['quantization'] for v in dep['variants']]
  rows = [[r['task'], _f(r['savedmodel_ms'])] +
          [f'{r[f"{q}_ms"]:.2f} ({r[f"{q}_speedup"]:.1f}x)' for q in quants]
          for r in dep['latency']]
  out = [f'Deployable model: {dep["source"]}; {dep["examples"]} held-out inputs per task, '
         f'{dep["threads"]} TFLite thread.', '',
         _table(['task', 'SavedModel ms'] + [f'TFLite {q} ms (speed-up)' for q in quants], rows),
         '', _sizes(dep['sizes'])]
  agreement = [[r['task']] + [f'{r[f"{q}_top1_agreement"]:.2f} / '
                              f'{r[f"{q}_max_abs_logit_diff"]:.2g}' for q in quants]
               for r in dep['latency']]
  out += ['', 'Agreement with the SavedModel (top-1 agreement / max |logit difference|):', '',
          _table(['task'] + quants, agreement)]
  if data.get('paper_geometry'):
    pg = data['paper_geometry']
    params = pg['params_by_part']
    total = sum(params.values())
    out += ['', f'Paper geometry, PolyViT-{pg["model"]} ({total / 1e6:.1f} M parameters, of '
            f'which tokenizers and position embeddings '
            f'{sum(v for k, v in params.items() if k.startswith("tokenizers")) / 1e6:.2f} M), '
            'random weights:', '', _sizes(pg['sizes'])]
  return '\n'.join(out)


def _sizes(rows: list[dict]) -> str:
  return _table(['variant', 'multi-task file (bytes)', 'multi / largest single-task file',
                 'multi / smallest single-task file', 'multi / sum of single-task files',
                 'size vs float32'],
                [[r['variant'], f'{r["multi_bytes"]:,}',
                  f'**{r["multi_over_largest_single"]:.3f}**',
                  _f(r['multi_over_smallest_single'], '.3f'),
                  _f(r['multi_over_sum_single'], '.3f'), f'**{r["over_float32"]:.3f}**']
                 for r in rows])


def serving(data: dict) -> str:
  rows = [[r['task'], r['rows'], r['batching'], r['requests'], r['failures'],
           _f(r['requests_per_second'], '.1f'), _f(r['rows_per_second'], '.1f'),
           _f(r['p50_ms'], '.1f'), _f(r['p90_ms'], '.1f'),
           _f(r['in_process_rows_per_second'], '.0f'), _f(r['vs_in_process'])]
          for r in data['rows']]
  return _table(['task', 'rows/request', 'server', 'requests', 'failed', 'req/s', 'rows/s',
                 'p50 ms', 'p90 ms', 'in-process rows/s', 'server / in-process'], rows)


def token_dense(data: dict) -> str:
  rows = [[r['size'], r['modality'], r['tokens'], r['batch'], _f(r['keras_dense_seconds'], '.3f'),
           _f(r['token_dense_seconds'], '.3f'), f'**{r["speedup"]:.3f}**',
           ', '.join(f'{x:.2f}' for x in r['speedup_all'])] for r in data['rows']]
  return _table(['size', 'modality', 'tokens', 'batch', 'keras Dense s/step',
                 'TokenDense s/step', 'speed-up', 'per pair'], rows)


def profile(data: dict) -> str:
  rows = [[r['kind'], _f(r['seconds'], '.3f'), f'{100 * r["share"]:.1f} %']
          for r in data['kinds']]
  rates = ', '.join(f'{k} {v:.1f}' for k, v in data['gflops_in_ops'].items())
  return '\n'.join([
      f'{data["size"]}/{data["modality"]}, batch {data["batch"]}: '
      f'{data["wall_seconds"]:.2f} s/step wall, {data["op_seconds"]:.2f} s/step of op time '
      f'(summed over executor threads), {data["step_gflop"]:.1f} GFLOP/step, '
      f'{data["step_gflops"]:.1f} GFLOP/s; fp32 matmul reference in the same process '
      f'{data["reference_matmul_gflops"]:.1f} GFLOP/s.', '',
      _table(['op kind', 's/step (op time)', 'share'], rows), '',
      f'GFLOP/s while in each matmul kind (its FLOPs / its op time): {rates}.'])


def eval_memory(data: dict) -> str:
  rows = [[r['max_clips_per_pass'] or 'one pass', _f(r['peak_rss_mib'], '.0f'),
           _f(r['rss_before_step_mib'], '.0f'), _f(r['step_peak_mib'], '.0f'),
           f'**{r["peak_ratio"]:.3f}**', _f(r['step_seconds'], '.1f'), _f(r['time_ratio'], '.3f'),
           f'{r["max_abs_logit_diff"]:.1e}', f'{r["max_abs_prob_diff"]:.1e}']
          for r in data['rows']]
  return '\n'.join([
      f'{data["size"]}, batch {data["batch"]} x {data["views"]} views '
      f'({data["rows"][0]["tokens_per_clip"]} tokens per clip), random weights, one child '
      'process per row.', '',
      _table(['clips per pass', 'peak RSS MiB', 'RSS before step MiB', 'step peak MiB',
              'peak / one pass', 'step s', 'time / one pass', 'max abs d logit',
              'max abs d prob'], rows)])


SECTIONS = [('train_step', '', 'Training step', train_step),
            ('train_step_batch8', '', 'Training step at batch 8 (fp32)', train_step),
            ('peer', '', 'Peer (KerasHub ViTBackbone), XLA off', peer),
            ('peer', 'xla', 'Peer (KerasHub ViTBackbone), XLA on', peer),
            ('cotraining_overhead', '', 'Co-training overhead', cotraining),
            ('input_pipeline', '', 'Input pipelines', input_pipeline),
            ('export_speed', '', 'Export', export),
            ('serving', '', 'Serving', serving),
            ('token_dense', '', 'TokenDense before/after', token_dense),
            ('profile_S_audio', '', 'Profile of the S/audio step (fp32)', profile),
            ('profile_B_image', '', 'Profile of the B/image step (fp32)', profile),
            ('eval_memory', '', 'Peak memory of the multi-view eval step', eval_memory)]


def main(argv: Sequence[str]) -> None:
  del argv
  for name, subdir, title, fn in SECTIONS:
    data = _load(name, subdir)
    if data is None:
      continue
    print(f'### {title}\n\n{machine(data)}\n')
    print(fn(data))
    print()


if __name__ == '__main__':
  app.run(main)
