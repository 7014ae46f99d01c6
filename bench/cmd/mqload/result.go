package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/mqgate/mqgate/bench/latency"
	"github.com/mqgate/mqgate/bench/procstat"
)

// result is what one scenario run reports: one line for people, one JSON
// object for the driver script.
type result struct {
	Scenario string `json:"scenario"`
	Broker   string `json:"broker,omitempty"`
	Round    int    `json:"round,omitempty"`

	// The measured interval and what was counted in it: deliveries to
	// subscribers for message scenarios, accepted connections for conns.
	Seconds    float64 `json:"seconds"`
	Msgs       uint64  `json:"msgs"`
	MsgsPerSec float64 `json:"msgs_per_sec"`

	// Broker CPU (utime+stime of -pid) over the same interval; zero when no
	// pid was given.
	BrokerCPUSec  float64 `json:"broker_cpu_sec"`
	BrokerCPUPct  float64 `json:"broker_cpu_pct"`
	MsgsPerCPUSec float64 `json:"msgs_per_cpu_sec"`
	// The broker's minor page faults over the same interval: a broker
	// still touching fresh heap pages (before its first garbage collection)
	// pays microseconds for each, so a comparison of two brokers is fair
	// only once both have warmed up past that.
	BrokerMinorFaults uint64 `json:"broker_minor_faults"`
	// The broker's CPU split into its own code and the kernel's work for
	// it, its read and write system calls, and its threads' context
	// switches (procstat.Activity), over the same interval: where two
	// brokers' CPU for the same messages differs, whether it is in the
	// kernel, and whether it is more calls or dearer ones.
	BrokerUserCPUSec  float64 `json:"broker_user_cpu_sec"`
	BrokerSysCPUSec   float64 `json:"broker_sys_cpu_sec"`
	BrokerReadCalls   uint64  `json:"broker_read_calls"`
	BrokerWriteCalls  uint64  `json:"broker_write_calls"`
	BrokerSwitches    uint64  `json:"broker_switches"`
	BrokerPreemptions uint64  `json:"broker_preemptions"`
	// The CPU of the broker's first thread after its main one over the
	// same interval (procstat.Activity.FirstThread): in a Go broker the
	// runtime's monitor thread, which a Go CPU profile does not see; 0
	// when there is no such thread, or when it was not the same thread
	// at both ends.
	BrokerMonitorCPUSec float64 `json:"broker_monitor_cpu_sec"`
	// The load generator's own CPU over the same interval.
	ClientCPUSec float64 `json:"client_cpu_sec"`
	ClientCPUPct float64 `json:"client_cpu_pct"`

	// Whole-run counts: publishes written, deliveries expected and received,
	// and their difference once the run has drained.
	Sent     uint64 `json:"sent,omitempty"`
	Expected uint64 `json:"expected,omitempty"`
	Received uint64 `json:"received,omitempty"`
	Lost     int64  `json:"lost"`
	Dup      uint64 `json:"dup,omitempty"`
	Stalls   int    `json:"stalls,omitempty"`

	Latency *latencyFigures `json:"latency_us,omitempty"`

	// The conns scenario.
	Conns        int     `json:"conns,omitempty"`
	Alive        int     `json:"alive,omitempty"`
	RSSBefore    int64   `json:"rss_before,omitempty"`
	RSSAfter     int64   `json:"rss_after,omitempty"`
	BytesPerConn float64 `json:"bytes_per_conn,omitempty"`

	Error string `json:"error,omitempty"`
}

// latencyFigures are publish→delivery percentiles in microseconds.
type latencyFigures struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

func figures(h *latency.Histogram) *latencyFigures {
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	return &latencyFigures{
		Count: h.Count(),
		P50:   us(h.Quantile(0.50)),
		P90:   us(h.Quantile(0.90)),
		P99:   us(h.Quantile(0.99)),
		P999:  us(h.Quantile(0.999)),
		Max:   us(h.Max()),
	}
}

// snapshot is the state of the world at one instant of a run.
type snapshot struct {
	at     time.Time
	broker procstat.Usage    // zero without a pid
	act    procstat.Activity // zero without a pid
	client time.Duration     // own CPU
	count  uint64            // the scenario's counter
}

// meter takes snapshots of the broker's and the generator's CPU.
type meter struct{ pid int }

func (m meter) snap(count uint64) (snapshot, error) {
	s := snapshot{at: time.Now(), count: count}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return s, fmt.Errorf("getrusage: %w", err)
	}
	s.client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if m.pid > 0 {
		var err error
		if s.broker, err = procstat.Read(m.pid); err != nil {
			return s, fmt.Errorf("broker cpu: %w", err)
		}
		if s.act, err = procstat.ReadActivity(m.pid); err != nil {
			return s, fmt.Errorf("broker activity: %w", err)
		}
	}
	return s, nil
}

// measure fills the rate and CPU figures from two snapshots.
func (r *result) measure(s0, s1 snapshot) {
	secs := s1.at.Sub(s0.at).Seconds()
	if secs <= 0 {
		return
	}
	r.Seconds = secs
	r.Msgs = s1.count - s0.count
	r.MsgsPerSec = float64(r.Msgs) / secs
	r.ClientCPUSec = (s1.client - s0.client).Seconds()
	r.ClientCPUPct = 100 * r.ClientCPUSec / secs
	r.BrokerCPUSec = (s1.broker.CPU - s0.broker.CPU).Seconds()
	r.BrokerCPUPct = 100 * r.BrokerCPUSec / secs
	r.BrokerMinorFaults = s1.broker.MinorFaults - s0.broker.MinorFaults
	r.BrokerUserCPUSec = (s1.broker.User - s0.broker.User).Seconds()
	r.BrokerSysCPUSec = (s1.broker.System - s0.broker.System).Seconds()
	r.BrokerReadCalls = s1.act.ReadCalls - s0.act.ReadCalls
	r.BrokerWriteCalls = s1.act.WriteCalls - s0.act.WriteCalls
	// A thread that ended between the snapshots took its switches with it
	// (procstat.Activity): the difference may then be short, never below 0.
	r.BrokerSwitches = s1.act.Switches - min(s0.act.Switches, s1.act.Switches)
	r.BrokerPreemptions = s1.act.Preemptions - min(s0.act.Preemptions, s1.act.Preemptions)
	if s0.act.FirstThread != 0 && s1.act.FirstThread == s0.act.FirstThread {
		r.BrokerMonitorCPUSec = (s1.act.FirstThreadCPU - s0.act.FirstThreadCPU).Seconds()
	}
	if r.BrokerCPUSec > 0 {
		r.MsgsPerCPUSec = float64(r.Msgs) / r.BrokerCPUSec
	}
}

// line renders the result for people.
func (r *result) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s", r.Scenario)
	if r.Broker != "" {
		fmt.Fprintf(&b, " %-10s", r.Broker)
	}
	if r.Round > 0 {
		fmt.Fprintf(&b, " r%d", r.Round)
	}
	unit := "msg"
	if r.Scenario == "conns" {
		unit = "conn"
	}
	fmt.Fprintf(&b, "  %s %s/s", human(r.MsgsPerSec), unit)
	if r.MsgsPerCPUSec > 0 {
		fmt.Fprintf(&b, "  %s %s/CPU-s", human(r.MsgsPerCPUSec), unit)
	}
	fmt.Fprintf(&b, "  broker CPU %.0f%%", r.BrokerCPUPct)
	if r.BrokerMinorFaults > 0 {
		fmt.Fprintf(&b, " (%s page faults)", human(float64(r.BrokerMinorFaults)))
	}
	fmt.Fprintf(&b, "  client CPU %.0f%%  over %.1fs", r.ClientCPUPct, r.Seconds)
	if r.Sent > 0 {
		fmt.Fprintf(&b, "  sent %s delivered %s lost %d", human(float64(r.Sent)), human(float64(r.Received)), r.Lost)
	}
	if r.Dup > 0 {
		fmt.Fprintf(&b, " dup %d", r.Dup)
	}
	if r.Stalls > 0 {
		fmt.Fprintf(&b, " stalls %d", r.Stalls)
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(&b, "  latency µs p50 %.0f p90 %.0f p99 %.0f p999 %.0f max %.0f (n=%d)", l.P50, l.P90, l.P99, l.P999, l.Max, l.Count)
	}
	if r.Conns > 0 {
		fmt.Fprintf(&b, "  %d conns alive %d", r.Conns, r.Alive)
		if r.RSSAfter > 0 {
			fmt.Fprintf(&b, "  RSS %s → %s = %.0f B/conn", mib(r.RSSBefore), mib(r.RSSAfter), r.BytesPerConn)
		}
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "  ERROR: %s", r.Error)
	}
	return b.String()
}

func (r *result) json() string {
	b, err := json.Marshal(r)
	if err != nil {
		// A result holds only numbers and strings: this cannot fail.
		panic(err)
	}
	return string(b)
}

// human renders a count with a k or M suffix.
func human(v float64) string {
	switch {
	case v >= 10e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 10e3:
		return fmt.Sprintf("%.0fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }
