package api

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
)

// perNode answers the cluster form ([{node, key: v}]) or, for
// /nodes/:node/..., the bare value; an unknown node is 101.
func (s *Server) perNode(c echo.Context, key string, v any) error {
	node := s.opts.Broker.NodeName()
	if n := c.Param("node"); n != "" {
		if n != node {
			return fail(c, CodeRPC, "badrpc")
		}
		return reply(c, v)
	}
	if key == "" {
		return reply(c, []any{v})
	}
	return reply(c, []map[string]any{{"node": node, key: v}})
}

// brokerInfo is EMQX 4's broker object.
type brokerInfo struct {
	Node       string `json:"node"`
	NodeStatus string `json:"node_status"`
	OTPRelease string `json:"otp_release"`
	Version    string `json:"version"`
	Sysdescr   string `json:"sysdescr"`
	Uptime     string `json:"uptime"`
	Datetime   string `json:"datetime"`
}

func (s *Server) brokerInfo() brokerInfo {
	b := s.opts.Broker
	status := "Running"
	if b.Uptime() == 0 {
		status = "Stopped"
	}
	return brokerInfo{
		Node:       b.NodeName(),
		NodeStatus: status,
		OTPRelease: runtime.Version(),
		Version:    b.Version(),
		Sysdescr:   "mqgate MQTT broker",
		Uptime:     formatUptime(b.Uptime()),
		Datetime:   time.Now().Format(dateTimeFormat),
	}
}

// GET /brokers and /brokers/:node.
func (s *Server) brokers(c echo.Context) error {
	return s.perNode(c, "", s.brokerInfo())
}

// nodeInfo is EMQX 4's node object.
type nodeInfo struct {
	Node             string  `json:"node"`
	NodeStatus       string  `json:"node_status"`
	OTPRelease       string  `json:"otp_release"`
	Version          string  `json:"version"`
	Uptime           string  `json:"uptime"`
	MemoryTotal      string  `json:"memory_total"`
	MemoryUsed       string  `json:"memory_used"`
	ProcessAvailable int     `json:"process_available"`
	ProcessUsed      int     `json:"process_used"`
	MaxFDs           uint64  `json:"max_fds"`
	Connections      int64   `json:"connections"`
	LiveConnections  int64   `json:"live_connections"`
	Load1            float64 `json:"load1"`
	Load5            float64 `json:"load5"`
	Load15           float64 `json:"load15"`
}

// GET /nodes and /nodes/:node. Memory is the Go runtime's: total obtained
// from the system and in use by the heap; processes are goroutines.
func (s *Server) nodes(c echo.Context) error {
	bi := s.brokerInfo()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	stats := s.opts.Broker.Stats()
	n := nodeInfo{
		Node:            bi.Node,
		NodeStatus:      bi.NodeStatus,
		OTPRelease:      bi.OTPRelease,
		Version:         bi.Version,
		Uptime:          bi.Uptime,
		MemoryTotal:     formatBytes(ms.Sys),
		MemoryUsed:      formatBytes(ms.HeapInuse + ms.StackInuse),
		ProcessUsed:     runtime.NumGoroutine(),
		Connections:     stats["connections.count"],
		LiveConnections: stats["live_connections.count"],
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		n.MaxFDs = rl.Cur
	}
	n.Load1, n.Load5, n.Load15 = loadAvg()
	return s.perNode(c, "", n)
}

// GET /stats and /nodes/:node/stats.
func (s *Server) stats(c echo.Context) error {
	return s.perNode(c, "stats", s.opts.Broker.Stats())
}

// GET /metrics and /nodes/:node/metrics (the EMQX JSON counters).
func (s *Server) metrics(c echo.Context) error {
	return s.perNode(c, "metrics", s.opts.Broker.Metrics())
}

// listenerInfo is EMQX 4's listener object.
type listenerInfo struct {
	Protocol      string           `json:"protocol"`
	ListenOn      string           `json:"listen_on"`
	Identifier    string           `json:"identifier"`
	Acceptors     int              `json:"acceptors"`
	MaxConns      int              `json:"max_conns"`
	CurrentConns  int64            `json:"current_conns"`
	ShutdownCount []map[string]int `json:"shutdown_count"`
}

// GET /listeners and /nodes/:node/listeners: the MQTT listeners, then the
// management listener itself.
func (s *Server) listeners(c echo.Context) error {
	var out []listenerInfo
	for _, l := range s.opts.Broker.Listeners() {
		out = append(out, listenerInfo{
			Protocol: l.Protocol, ListenOn: l.ListenOn, Identifier: "mqtt:" + l.Identifier,
			Acceptors: 1, MaxConns: l.MaxConns, CurrentConns: l.CurrentConns, ShutdownCount: []map[string]int{},
		})
	}
	if a := s.Addr(); a != nil {
		out = append(out, listenerInfo{
			Protocol: "http:management", ListenOn: a.String(), Identifier: "http:management",
			Acceptors: 1, ShutdownCount: []map[string]int{},
		})
	}
	return s.perNode(c, "listeners", emptyIfNil(out))
}

// formatUptime writes d as EMQX does: "2 days, 3 hours, 4 minutes, 5 seconds",
// leaving out leading zero units.
func formatUptime(d time.Duration) string {
	secs := int64(d / time.Second)
	parts := []struct {
		n    int64
		unit string
	}{{secs / 86400, "days"}, {secs / 3600 % 24, "hours"}, {secs / 60 % 60, "minutes"}, {secs % 60, "seconds"}}
	var out []string
	for i, p := range parts {
		if p.n == 0 && len(out) == 0 && i < len(parts)-1 {
			continue
		}
		out = append(out, fmt.Sprintf("%d %s", p.n, p.unit))
	}
	return strings.Join(out, ", ")
}

// formatBytes writes n as EMQX's memory fields: "96.75M", or a bare number
// under 1K.
func formatBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 2, 64) + "G"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 2, 64) + "M"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 2, 64) + "K"
	}
	return strconv.FormatUint(n, 10)
}

// loadAvg reads the system load averages; zeros where they are not
// available.
func loadAvg() (l1, l5, l15 float64) {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, 0, 0
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return 0, 0, 0
	}
	l1, _ = strconv.ParseFloat(f[0], 64)
	l5, _ = strconv.ParseFloat(f[1], 64)
	l15, _ = strconv.ParseFloat(f[2], 64)
	return l1, l5, l15
}
