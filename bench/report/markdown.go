package report

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteMarkdown writes r, goals checked, as markdown: the comparison table, then one table per other scenario.
func (r *Report) WriteMarkdown(w io.Writer) error {
	r.CheckGoals()
	var b strings.Builder
	fmt.Fprintf(&b, "### connectflow benchmark\n\n%s; load average %.2f before, %.2f after; Temporal: %s; took %.0f s.\n\n`%s`\n\n",
		r.Machine.text(), r.LoadAverage[0], r.LoadAverage[1], r.Temporal, r.Seconds, r.Command)

	if r.Ingest != nil || r.Transfers != nil || r.Tokens != nil {
		b.WriteString("| # | measure | ceiling | ours | ours vs ceiling |\n| --- | --- | ---: | ---: | ---: |\n")
		if c := r.Ingest; c != nil {
			c.rows(&b, r.CPUScope, "1", "signals/s", "signal latency")
		}
		if c := r.IngestSerial; c != nil {
			c.latencyRows(&b, "1", "signal latency")
		}
		if c := r.Transfers; c != nil {
			c.rows(&b, r.CPUScope, "2", "transfers/s", "start-to-complete")
		}
		if t := r.Tokens; t != nil {
			fmt.Fprintf(&b, "| 3 | token requests per 1,000 transfers (%d requests, %d transfers) | | %.2f | |\n",
				t.Requests, t.Transfers, t.Per1000)
			fmt.Fprintf(&b, "| 3 | token requests per token lifetime per worker (TTL %s, uptime %.0f s, %d worker) | | %.2f | |\n",
				seconds(t.TokenTTLSeconds), t.WorkerSeconds, t.Workers, t.PerLifetimePerWorker)
		}
		b.WriteString("\n")
		if r.Ingest != nil || r.Transfers != nil {
			for _, c := range []*Comparison{r.Ingest, r.Transfers} {
				if c != nil {
					fmt.Fprintf(&b, "- %s ceiling: %s\n- %s ours: %s\n", c.Unit, c.Ceiling.What, c.Unit, c.Ours.What)
				}
			}
			for _, c := range []*Comparison{r.Ingest, r.IngestSerial, r.Transfers} {
				if c == nil {
					continue
				}
				for _, sd := range []struct {
					name string
					side Side
				}{{"ceiling", c.Ceiling}, {"ours", c.Ours}} {
					if sd.side.Errors > 0 {
						fmt.Fprintf(&b, "- %s %s, %s: %d failed, the first with: %s\n", c.Unit, sd.name,
							atATime(c.Concurrency), sd.side.Errors, sd.side.FirstError)
					}
				}
			}
			b.WriteString("\n")
		}
	}
	if a := r.Actions; a != nil {
		a.table(&b, r.Transfers)
	}
	if c := r.Notifications; c != nil {
		b.WriteString("| # | notifications to the platform | off | on | on vs off |\n| --- | --- | ---: | ---: | ---: |\n")
		c.rows(&b, r.CPUScope, "2b", "transfers/s", "start-to-complete")
		if nc := r.NotificationCost; nc != nil {
			for _, k := range []string{"activities", "timers", "upserts", "markers", "workflow tasks"} {
				fmt.Fprintf(&b, "| 2b | %s per transfer | %d | %d | %+d |\n", k, nc.Off[k], nc.On[k], nc.On[k]-nc.Off[k])
			}
		}
		fmt.Fprintf(&b, "\n- off: %s\n- on: %s\n\n", c.Ceiling.What, c.Ours.What)
	}
	if wt := r.Waiting; wt != nil {
		wt.table(&b)
	}
	if v := r.Verify; v != nil {
		v.table(&b)
	}
	if len(r.Goals) > 0 {
		b.WriteString("| goal | target | measured | holds |\n| --- | --- | ---: | --- |\n")
		for _, g := range r.Goals {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", g.Name, g.Target, g.Measured, yesNo(g.Met))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("report: write markdown: %w", err)
	}
	return nil
}

func (m Machine) text() string {
	s := fmt.Sprintf("%d CPUs (GOMAXPROCS %d)", m.CPUs, m.GOMAXPROCS)
	if m.CPUModel != "" {
		s += ", " + m.CPUModel
	}
	if m.MemoryBytes > 0 {
		s += ", " + bytesText(float64(m.MemoryBytes)) + " RAM"
	}
	return s + fmt.Sprintf(", %s %s/%s", m.GoVersion, m.GOOS, m.GOARCH)
}

// rows writes a comparison's throughput and latency rows.
func (c *Comparison) rows(b *strings.Builder, cpuScope, n, rate, latency string) {
	fmt.Fprintf(b, "| %s | %s, %s | %.1f | %.1f | %.2fx |\n", n, rate, atATime(c.Concurrency),
		c.Ceiling.PerSecond, c.Ours.PerSecond, c.Ratio)
	c.latencyRows(b, n, latency)
	if c.CPURatio > 0 {
		fmt.Fprintf(b, "| %s | CPU per %s, %s | %.2f ms | %.2f ms | %.2fx the CPU |\n", n, c.Unit, cmp.Or(cpuScope, "all of the run's processes"),
			c.Ceiling.CPUMsPerOp, c.Ours.CPUMsPerOp, c.CPURatio)
	}
	if c.Ceiling.SigningMsPerOp > 0 || c.Ours.SigningMsPerOp > 0 {
		fmt.Fprintf(b, "| %s | of which signing webhooks as Connect, per %s | %.2f ms | %.2f ms | |\n", n, c.Unit,
			c.Ceiling.SigningMsPerOp, c.Ours.SigningMsPerOp)
	}
}

// latencyRows writes a comparison's p50 and p99 rows, and its failures if any.
func (c *Comparison) latencyRows(b *strings.Builder, n, latency string) {
	for _, q := range []struct {
		name                 string
		ceiling, ours, added float64
	}{
		{"p50", c.Ceiling.Latency.P50, c.Ours.Latency.P50, c.AddedP50Ms},
		{"p99", c.Ceiling.Latency.P99, c.Ours.Latency.P99, c.AddedP99Ms},
	} {
		fmt.Fprintf(b, "| %s | %s %s, %s | %.2f ms | %.2f ms | %+.2f ms |\n", n, q.name, latency,
			atATime(c.Concurrency), q.ceiling, q.ours, q.added)
	}
	if c.Ceiling.Errors > 0 || c.Ours.Errors > 0 {
		fmt.Fprintf(b, "| %s | failed %ss, %s | %d | %d | |\n", n, c.Unit, atATime(c.Concurrency), c.Ceiling.Errors,
			c.Ours.Errors)
	}
	if c.Ours.Redelivered > 0 {
		fmt.Fprintf(b, "| %s | webhooks resent after a 503, %s | | %d | |\n", n, atATime(c.Concurrency), c.Ours.Redelivered)
	}
}

func (wt *Waiting) table(b *strings.Builder) {
	fmt.Fprintf(b, "#### 4. %d transfers waiting for webhooks in one worker\n\n", wt.Transfers)
	fmt.Fprintf(b, "Started in %.1f s (%.1f/s, %d at a time, %d failed); %d workflows in the worker's sticky cache after.\n\n",
		wt.StartSeconds, wt.StartPerSecond, wt.Concurrency, wt.Errors, wt.StickyCached)
	b.WriteString("| worker process | before | after | per waiting transfer |\n| --- | ---: | ---: | ---: |\n")
	for _, row := range []struct {
		name          string
		before, after uint64
		per           float64
	}{
		{"RSS (VmRSS)", wt.Before.RSSBytes, wt.After.RSSBytes, wt.PerTransfer.RSSBytes},
		{"Go heap, live after GC", wt.Before.HeapBytes, wt.After.HeapBytes, wt.PerTransfer.HeapBytes},
		{"goroutine stacks", wt.Before.StackBytes, wt.After.StackBytes, wt.PerTransfer.StackBytes},
	} {
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", row.name, bytesText(float64(row.before)),
			bytesText(float64(row.after)), bytesText(row.per))
	}
	fmt.Fprintf(b, "| goroutines | %d | %d | %.2f |\n\n", wt.Before.Goroutines, wt.After.Goroutines,
		wt.PerTransfer.Goroutines)
	b.WriteString("| responsiveness: 3 webhooks through the bridge to a completed transfer | p50 | p99 | max |\n| --- | ---: | ---: | ---: |\n")
	fmt.Fprintf(b, "| worker idle (%d probes) | %.1f ms | %.1f ms | %.1f ms |\n", wt.ProbeIdle.Count,
		wt.ProbeIdle.P50, wt.ProbeIdle.P99, wt.ProbeIdle.Max)
	fmt.Fprintf(b, "| %d transfers waiting (%d probes) | %.1f ms | %.1f ms | %.1f ms |\n\n", wt.Transfers,
		wt.ProbeLoaded.Count, wt.ProbeLoaded.P50, wt.ProbeLoaded.P99, wt.ProbeLoaded.Max)
}

func (v *Verification) table(b *strings.Builder) {
	fmt.Fprintf(b, "#### 5. Cost of verification (testing.Benchmark, fastest of 3; RSA verify floor %.0f ns/op)\n\n", v.FloorNsPerOp)
	b.WriteString("| benchmark | what | ns/op | allocs/op | B/op | x RSA floor |\n| --- | --- | ---: | ---: | ---: | ---: |\n")
	for _, bm := range v.Benchmarks {
		floor := ""
		if bm.FloorMultiple > 0 {
			floor = fmt.Sprintf("%.2fx of %d", bm.FloorMultiple, bm.RSAVerifies)
		}
		fmt.Fprintf(b, "| %s | %s | %.0f | %d | %d | %s |\n", bm.Name, bm.What, bm.NsPerOp, bm.AllocsPerOp,
			bm.BytesPerOp, floor)
	}
	b.WriteString("\n")
}

// bytesText prints a byte count in binary units; it may be negative (a delta).
func bytesText(n float64) string {
	abs := n
	if abs < 0 {
		abs = -abs
	}
	switch {
	case abs >= 1<<30:
		return fmt.Sprintf("%.2f GiB", n/(1<<30))
	case abs >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case abs >= 1<<10:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.0f B", n)
}

// seconds prints seconds as a duration, e.g. 3600 as "1h0m0s".
func seconds(s float64) string { return time.Duration(s * float64(time.Second)).String() }

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}
