package broker

import (
	"time"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/mqtt"
)

// will returns the connection's will message, or nil. It is read on the
// reader goroutine, or after it ended.
func (c *conn) will() *mqtt.Will {
	return c.info.will
}

// clearWill drops the will: a normal DISCONNECT [MQTT-3.1.2-10].
func (c *conn) clearWill() {
	c.info.will = nil
}

// publishWill publishes c's will message once, after checking that the
// client may publish to its topic (authorization at publication time).
func (b *Broker) publishWill(c *conn) {
	w := c.will()
	if w == nil {
		return
	}
	c.clearWill()
	if !c.authorize(access.Publish, w.Topic, w.QoS, w.Retain) {
		b.log.Debug("will message not authorized", "client", c.clientID)
		return
	}
	now := time.Now()
	m := &message{
		id:      b.newMessageID(),
		topic:   w.Topic,
		payload: w.Payload,
		qos:     w.QoS,
		retain:  w.Retain,
		created: now,
		from:    c.clientID,
	}
	if c.infoSet {
		m.fromUser, m.userSet = c.info.username, c.info.usernameSet
	}
	if c.version == mqtt.V5 && !w.Props.Empty() {
		props := w.Props
		props.Clear(mqtt.PropWillDelay)
		if props.Has(mqtt.PropMessageExpiry) {
			m.expiry = now.Add(time.Duration(props.MessageExpiry) * time.Second)
			props.Clear(mqtt.PropMessageExpiry)
		}
		if !props.Empty() {
			m.props = &props
		}
	}
	b.publish(m)
}
