package broker

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// sysPrefix returns "$SYS/brokers/<node>/", the prefix of EMQX 4's per-node
// system topics.
func (b *Broker) sysPrefix() string { return "$SYS/brokers/" + b.opts.NodeName + "/" }

// startSys starts the $SYS publisher: node, version and description
// (retained), stats and metrics every sys_interval; uptime and datetime every
// sys_heartbeat. A zero sys_interval disables $SYS.
func (b *Broker) startSys() {
	if b.opts.SysInterval <= 0 {
		return
	}
	b.goRun(func() {
		interval := time.NewTicker(b.opts.SysInterval)
		defer interval.Stop()
		hb := b.opts.SysHeartbeat
		if hb <= 0 {
			hb = b.opts.SysInterval
		}
		heartbeat := time.NewTicker(hb)
		defer heartbeat.Stop()
		b.publishSysInfo()
		b.publishSysHeartbeat()
		for {
			select {
			case <-b.ctx.Done():
				return
			case <-interval.C:
				b.publishSysInfo()
			case <-heartbeat.C:
				b.publishSysHeartbeat()
			}
		}
	})
}

// publishSys publishes one broker message on a $SYS topic.
func (b *Broker) publishSys(topic string, payload []byte, qos byte, retain bool) {
	b.publish(&message{
		id:      b.newMessageID(),
		topic:   topic,
		payload: payload,
		qos:     qos,
		retain:  retain,
		created: time.Now(),
		sys:     true,
	})
}

func (b *Broker) publishSysInfo() {
	p := b.sysPrefix()
	b.publishSys("$SYS/brokers", []byte(b.opts.NodeName), 0, true)
	b.publishSys(p+"version", []byte(b.opts.Version), 0, true)
	b.publishSys(p+"sysdescr", []byte("mqgate"), 0, true)
	for k, v := range b.Stats() {
		// Stats names keep their dots: stats/connections.count.
		b.publishSys(p+"stats/"+k, strconv.AppendInt(nil, v, 10), 0, false)
	}
	for k, v := range b.Metrics() {
		// Metrics names turn dots into levels: metrics/packets/connect/received.
		b.publishSys(p+"metrics/"+strings.ReplaceAll(k, ".", "/"), strconv.AppendUint(nil, v, 10), 0, false)
	}
}

func (b *Broker) publishSysHeartbeat() {
	p := b.sysPrefix()
	b.publishSys(p+"uptime", []byte(formatUptime(time.Since(b.started))), 0, false)
	b.publishSys(p+"datetime", []byte(time.Now().Format("2006-01-02 15:04:05")), 0, false)
}

// formatUptime writes an uptime as EMQX 4 does: "2 days, 3 hours, 4
// minutes, 5 seconds", leading zero units dropped.
func formatUptime(d time.Duration) string {
	secs := int64(d / time.Second)
	units := []struct {
		name string
		size int64
	}{{"days", 86400}, {"hours", 3600}, {"minutes", 60}, {"seconds", 1}}
	var parts []string
	for _, u := range units {
		n := secs / u.size
		secs %= u.size
		if n == 0 && len(parts) == 0 && u.size != 1 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%d %s", n, u.name))
	}
	return strings.Join(parts, ", ")
}

// presence publishes $SYS/brokers/<node>/clients/<id>/connected or
// /disconnected with the JSON body of EMQX 4's presence module.
func (b *Broker) presence(c *conn, connected bool, reason string) {
	if b.opts.SysInterval <= 0 {
		return
	}
	now := time.Now()
	body := map[string]any{
		"clientid":     c.clientID,
		"username":     nil,
		"ipaddress":    c.peer.Addr().String(),
		"sockport":     c.localPort(),
		"proto_name":   "MQTT",
		"proto_ver":    int(c.version),
		"connected_at": c.connAt.UnixMilli(),
		"ts":           now.UnixMilli(),
	}
	if c.infoSet {
		if c.info.usernameSet {
			body["username"] = c.info.username
		}
		body["proto_name"] = c.info.protoName
	}
	topic := b.sysPrefix() + "clients/" + c.clientID
	if connected {
		body["connack"] = 0
		body["keepalive"] = c.info.keepAlive
		body["clean_start"] = c.info.cleanStart
		body["expiry_interval"] = c.info.expiry
		topic += "/connected"
	} else {
		body["reason"] = reason
		body["disconnected_at"] = now.UnixMilli()
		topic += "/disconnected"
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return
	}
	b.publishSys(topic, payload, b.opts.PresenceQoS, false)
}

// localPort is the port of the listener socket the client connected to.
func (c *conn) localPort() int {
	if a, ok := c.nc.LocalAddr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}
