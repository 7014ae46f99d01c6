package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// scenarioOrder is the order of rows in the comparison.
var scenarioOrder = []string{"fanin", "fanout", "qos1", "latency", "conns"}

// comparison holds the results of several runs, by scenario and broker.
type comparison struct {
	brokers   []string // in order of first appearance
	scenarios []string
	runs      map[string]map[string][]*result
}

func readResults(r io.Reader) (*comparison, error) {
	c := &comparison{runs: map[string]map[string][]*result{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || !strings.HasPrefix(line, "{") {
			continue
		}
		res := &result{}
		if err := json.Unmarshal([]byte(line), res); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if !slices.Contains(c.brokers, res.Broker) {
			c.brokers = append(c.brokers, res.Broker)
		}
		if c.runs[res.Scenario] == nil {
			c.runs[res.Scenario] = map[string][]*result{}
			c.scenarios = append(c.scenarios, res.Scenario)
		}
		c.runs[res.Scenario][res.Broker] = append(c.runs[res.Scenario][res.Broker], res)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading results: %w", err)
	}
	slices.SortStableFunc(c.scenarios, func(a, b string) int { return rank(a) - rank(b) })
	return c, nil
}

func rank(scenario string) int {
	if i := slices.Index(scenarioOrder, scenario); i >= 0 {
		return i
	}
	return len(scenarioOrder)
}

// best picks the round to report among those without error: the highest
// msg/s for throughput, the lowest p99 for latency, the fewest bytes per
// connection for conns. It returns nil when every round failed.
func best(runs []*result) *result {
	var b *result
	for _, r := range runs {
		if r.Error != "" {
			continue
		}
		if b == nil || better(r, b) {
			b = r
		}
	}
	return b
}

func better(r, than *result) bool {
	switch r.Scenario {
	case "latency":
		return r.Latency != nil && (than.Latency == nil || r.Latency.P99 < than.Latency.P99)
	case "conns":
		return r.BytesPerConn < than.BytesPerConn
	default:
		return r.MsgsPerSec > than.MsgsPerSec
	}
}

func printTable(path string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("table: %w", err)
	}
	defer f.Close()
	c, err := readResults(f)
	if err != nil {
		return fmt.Errorf("table %s: %w", path, err)
	}
	c.write(w)
	return nil
}

// write prints the comparison: throughput and efficiency, latency, idle
// connections, CPU use and failures.
func (c *comparison) write(w io.Writer) {
	if len(c.scenarios) == 0 {
		fmt.Fprintln(w, "no results")
		return
	}
	first, last := c.brokers[0], c.brokers[len(c.brokers)-1]
	fmt.Fprintln(w, "Throughput (best round: highest msg/s; latency: lowest p99; conns: fewest bytes/conn).")
	fmt.Fprintln(w, "conns counts connections accepted per second. ratio = "+last+" msg/CPU-s ÷ "+first+" msg/CPU-s (above 1: "+last+" does more per CPU-second).")
	head := []string{"scenario"}
	for _, b := range c.brokers {
		head = append(head, b+" msg/s")
	}
	for _, b := range c.brokers {
		head = append(head, b+" msg/CPU-s")
	}
	if len(c.brokers) > 1 {
		head = append(head, "ratio (per CPU-s)")
	}
	rows := [][]string{head}
	for _, s := range c.scenarios {
		row := []string{s}
		var eff []float64
		for _, b := range c.brokers {
			row = append(row, cell(best(c.runs[s][b]), c.runs[s][b], func(r *result) string { return thousands(r.MsgsPerSec) }))
		}
		for _, b := range c.brokers {
			r := best(c.runs[s][b])
			row = append(row, cell(r, c.runs[s][b], func(r *result) string { return thousands(r.MsgsPerCPUSec) }))
			if r != nil {
				eff = append(eff, r.MsgsPerCPUSec)
			} else {
				eff = append(eff, 0)
			}
		}
		if len(c.brokers) > 1 {
			ratio := "-"
			if eff[0] > 0 && eff[len(eff)-1] > 0 {
				ratio = strconv.FormatFloat(eff[len(eff)-1]/eff[0], 'f', 2, 64)
			}
			row = append(row, ratio)
		}
		rows = append(rows, row)
	}
	writeRows(w, rows)

	rows = [][]string{{"latency µs", "broker", "p50", "p90", "p99", "p99.9", "max", "samples"}}
	for _, s := range c.scenarios {
		for _, b := range c.brokers {
			r := best(c.runs[s][b])
			if r == nil || r.Latency == nil {
				continue
			}
			l := r.Latency
			rows = append(rows, []string{s, b, us(l.P50), us(l.P90), us(l.P99), us(l.P999), us(l.Max), thousands(float64(l.Count))})
		}
	}
	if len(rows) > 1 {
		fmt.Fprintln(w)
		writeRows(w, rows)
	}

	rows = [][]string{{"idle conns", "broker", "conns", "alive", "RSS before", "RSS after", "bytes/conn"}}
	for _, b := range c.brokers {
		r := best(c.runs["conns"][b])
		if r == nil {
			continue
		}
		rows = append(rows, []string{"conns", b, thousands(float64(r.Conns)), thousands(float64(r.Alive)), mib(r.RSSBefore), mib(r.RSSAfter), thousands(r.BytesPerConn)})
	}
	if len(rows) > 1 {
		fmt.Fprintln(w)
		writeRows(w, rows)
	}

	rows = [][]string{{"cpu and loss", "broker", "broker CPU", "client CPU", "lost", "rounds ok"}}
	var notes []string
	for _, s := range c.scenarios {
		for _, b := range c.brokers {
			runs := c.runs[s][b]
			if len(runs) == 0 {
				continue
			}
			ok := 0
			for _, r := range runs {
				if r.Error == "" {
					ok++
				} else {
					notes = append(notes, fmt.Sprintf("%s %s round %d: %s", s, b, r.Round, r.Error))
				}
			}
			r := best(runs)
			if r == nil {
				rows = append(rows, []string{s, b, "-", "-", "-", fmt.Sprintf("%d/%d", ok, len(runs))})
				continue
			}
			rows = append(rows, []string{s, b, pct(r.BrokerCPUPct), pct(r.ClientCPUPct), strconv.FormatInt(r.Lost, 10), fmt.Sprintf("%d/%d", ok, len(runs))})
		}
	}
	fmt.Fprintln(w)
	writeRows(w, rows)
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nFailed rounds:")
		for _, n := range notes {
			fmt.Fprintln(w, "  "+n)
		}
	}
}

// cell renders f(r), or why there is no figure.
func cell(r *result, runs []*result, f func(*result) string) string {
	switch {
	case r != nil:
		return f(r)
	case len(runs) == 0:
		return "-"
	default:
		return "FAILED"
	}
}

// writeRows prints rows as a table: the first column left-aligned, the others
// right-aligned, a rule under the header.
func writeRows(w io.Writer, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, s := range row {
			widths[i] = max(widths[i], len([]rune(s)))
		}
	}
	for n, row := range rows {
		var b strings.Builder
		for i, s := range row {
			pad := strings.Repeat(" ", widths[i]-len([]rune(s)))
			if i > 0 {
				b.WriteString(" | ")
			}
			if i == 0 {
				b.WriteString(s + pad)
			} else {
				b.WriteString(pad + s)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		if n == 0 {
			var rule strings.Builder
			for i, wd := range widths {
				if i > 0 {
					rule.WriteString("-+-")
				}
				rule.WriteString(strings.Repeat("-", wd))
			}
			fmt.Fprintln(w, rule.String())
		}
	}
}

// thousands renders v rounded to an integer with comma separators.
func thousands(v float64) string {
	s := strconv.FormatFloat(v, 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func us(v float64) string {
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return thousands(v)
}

func pct(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + "%" }
