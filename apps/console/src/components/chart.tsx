import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import type { ChartSeries } from '../usage-series';


/**
 * A uPlot line chart (it draws 100k points): x in epoch seconds, shown in `timeZone`. The chart
 * is an image for sight; the view beside it gives the same numbers as a table.
 */
export function TimeChart({ xs, series, timeZone, yLabel, label, range }: { xs: number[]; series: ChartSeries[]; timeZone: string; yLabel: string; label: string; range: [number, number] }) {
  const holder = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = `${timeZone}|${range[0]}|${range[1]}|${yLabel}|${series.map((s) => s.label).join('\u0000')}`;

  useEffect(() => {
    const element = holder.current;
    if (!element) return;
    const options: uPlot.Options = {
      width: Math.max(280, element.clientWidth),
      height: 320,
      tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), timeZone),
      scales: { x: { time: true, range: () => range } },
      axes: [{ stroke: '#1b2631' }, { label: yLabel, stroke: '#1b2631', size: 60 }],
      series: [{ label: 'time' }, ...series.map((s) => ({ label: s.label, stroke: s.colour, width: 2, fill: s.colour + '22', points: { show: xs.length < 200 } }))],
    };
    const created = new uPlot(options, [xs, ...series.map((s) => s.values)], element);
    plot.current = created;
    const observer = new ResizeObserver(() => created.setSize({ width: Math.max(280, element.clientWidth), height: 320 }));
    observer.observe(element);
    return () => {
      observer.disconnect();
      created.destroy();
      plot.current = null;
    };
    // Recreated only when the series or zone change; new numbers go through setData below.
  }, [shape]);

  useEffect(() => {
    plot.current?.setData([xs, ...series.map((s) => s.values)]);
  }, [xs, series]);

  return <div ref={holder} className="chart" role="img" aria-label={label} data-testid="usage-chart" />;
}
