package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
	"unicode/utf8"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/events"
	"github.com/mqgate/mqgate/mqtt"
)

// authTimeout bounds one authentication.
const authTimeout = 10 * time.Second

// refuseVersion answers a CONNECT of an unknown protocol level: 3.1.1's
// CONNACK return code 1, which every 3.x version understands, or 5.0's
// CONNACK 0x84 for a level above 5 (c.version is then V5) [MQTT-3.1.2-2].
func (c *conn) refuseVersion() {
	if c.version == mqtt.V5 {
		// A level above 5: 0x84 in the 5.0 format, which later levels
		// are expected to keep.
		c.writePacket(&mqtt.Connack{ReasonCode: mqtt.UnsupportedProtocolVersion})
	} else {
		c.version = mqtt.V311
		c.writePacket(&mqtt.Connack{ReasonCode: mqtt.V3BadProtocolVersion})
	}
	c.b.m.connackError.Add(1)
}

// refuse answers CONNECT with a failure code and ends the connection
// [MQTT-3.2.2-7]. code is a v5 reason code; 3.1.x clients get the
// corresponding return code.
func (c *conn) refuse(code mqtt.ReasonCode, why string) error {
	if c.version != mqtt.V5 {
		c.writePacket(&mqtt.Connack{ReasonCode: mqtt.ConnackReturnCode(code)})
	} else {
		// A reason string may always go in CONNACK [MQTT-3.2.2-19].
		ack := &mqtt.Connack{ReasonCode: code}
		ack.Props.ReasonString = why
		ack.Props.Set(mqtt.PropReasonString)
		c.writePacket(ack)
	}
	c.b.m.connackError.Add(1)
	if bus := c.b.opts.Events; bus.Wants(events.ClientConnack) {
		e := c.clientEvent(events.ClientConnack)
		e.ConnAck = byte(code)
		e.Reason = why
		bus.Publish(e)
	}
	c.setStop(0, why)
	return errStop
}

// identity is what the access chains see of this client.
func (c *conn) identity() access.Identity {
	id := access.Identity{
		ClientID: c.clientID,
		Listener: c.l.ident,
		Peer:     c.peer,
		Proto:    byte(c.version),
		CertCN:   c.cert.CertCN,
		CertDN:   c.cert.CertDN,
	}
	if c.infoSet {
		id.Username, id.UsernameSet = c.info.username, c.info.usernameSet
	}
	return id
}

// applyPeerCert replaces the username or client identifier of p with what
// the listener's peer_cert_as_username and peer_cert_as_clientid take from
// the client certificate (common name, subject, DER, base64 DER or MD5). A client without a
// verified certificate keeps what it sent.
func (c *conn) applyPeerCert(p *mqtt.Connect) {
	pick := c.cert.CertAs
	if v := pick(c.l.cfg.PeerCertAsUsername); v != "" {
		p.Username, p.UsernameSet = v, true
	}
	if v := pick(c.l.cfg.PeerCertAsClientID); v != "" {
		p.ClientID = v
	}
}

// handleConnect authenticates the client, attaches its session and sends
// CONNACK.
func (c *conn) handleConnect(p *mqtt.Connect) error {
	b := c.b
	b.m.connectReceived.Add(1)
	c.version = p.Version
	c.applyPeerCert(p)
	// client.connect, and a refusal, come before the id is accepted:
	// events report the one the client sent until then.
	c.clientID = p.ClientID
	c.info = connInfo{
		username:    p.Username,
		usernameSet: p.UsernameSet,
		cleanStart:  p.CleanStart,
		keepAlive:   p.KeepAlive,
		protoName:   protoName(p.ProtocolName),
		will:        p.Will,
	}
	if p.Props.Has(mqtt.PropSessionExpiry) {
		c.info.expiry = p.Props.SessionExpiry
	}
	c.infoSet = true
	c.connAt = time.Now()

	if bus := b.opts.Events; bus.Wants(events.ClientConnect) {
		bus.Publish(c.clientEvent(events.ClientConnect))
	}

	// Client identifier rules.
	assigned := false
	if p.ClientID == "" {
		if !p.CleanStart && p.Version != mqtt.V5 {
			// [MQTT-3.1.3-8] an empty id needs clean session 1 in 3.1.1.
			return c.refuse(mqtt.ClientIDNotValid, "client_identifier_not_valid")
		}
		if p.Version == mqtt.V31 {
			// MQTT 3.1 requires 1 to 23 characters.
			return c.refuse(mqtt.ClientIDNotValid, "client_identifier_not_valid")
		}
		// [MQTT-3.1.3-6] [MQTT-3.2.2-16] assign a unique id.
		var r [12]byte
		_, _ = rand.Read(r[:])
		p.ClientID = "mqgate-" + hex.EncodeToString(r[:])
		assigned = true
	}
	if utf8.RuneCountInString(p.ClientID) > b.opts.MaxClientIDLen {
		return c.refuse(mqtt.ClientIDNotValid, "client_identifier_not_valid")
	}
	c.clientID = p.ClientID

	if p.Version == mqtt.V5 && p.Props.Has(mqtt.PropAuthMethod) {
		// No enhanced authentication method is configured [MQTT-4.12.0-1].
		return c.refuse(mqtt.BadAuthenticationMethod, "bad_authentication_method")
	}
	if w := p.Will; w != nil {
		if err := mqtt.ValidTopicName(w.Topic); err != nil || (b.opts.MaxTopicLevels > 0 && mqtt.TopicLevels(w.Topic) > b.opts.MaxTopicLevels) {
			return c.refuse(mqtt.TopicNameInvalid, "will_topic_invalid")
		}
		if w.QoS > b.opts.MaxQoS {
			// [MQTT-3.2.2-12]
			return c.refuse(mqtt.QoSNotSupported, "will_qos_not_supported")
		}
		if w.Retain && !b.opts.RetainAvailable {
			// [MQTT-3.2.2-13]
			return c.refuse(mqtt.RetainNotSupported, "will_retain_not_supported")
		}
	}

	// Authentication.
	d := c.authenticate(p)
	p.Password = nil // never kept after the decision
	switch {
	case d.Unavailable:
		b.m.authFailure.Add(1)
		return c.refuse(mqtt.ServerUnavailable, "auth_backend_unavailable")
	case d.Verdict != access.Allow:
		b.m.authFailure.Add(1)
		b.m.connackAuthErr.Add(1)
		code := mqtt.BadUsernameOrPassword
		switch {
		case d.Refusal == access.Banned:
			code = mqtt.Banned
		case d.Refusal == access.NotAuthorized, !p.UsernameSet && !p.PasswordSet:
			code = mqtt.NotAuthorized
		}
		return c.refuse(code, "not_authorized")
	}
	c.superuser = d.Superuser
	if len(d.ACL) > 0 || !d.ExpiresAt.IsZero() {
		c.grants = &access.Decision{Verdict: d.Verdict, Superuser: d.Superuser, Source: d.Source, Reason: d.Reason, ACL: d.ACL, ExpiresAt: d.ExpiresAt}
	}
	if !d.ExpiresAt.IsZero() {
		left := time.Until(d.ExpiresAt)
		if left <= 0 {
			b.m.authFailure.Add(1)
			return c.refuse(mqtt.NotAuthorized, "credentials_expired")
		}
		// Credentials that expire end the connection when they do.
		c.authT = time.AfterFunc(left, func() { c.kick(mqtt.NotAuthorized, "credentials_expired") })
	}
	if d.Source == "anonymous" {
		b.m.authAnonymous.Add(1)
	}
	b.m.authSuccess.Add(1)

	// The will is authorized at connect, as well as when it is published:
	// a will the client may not publish is discarded now.
	if w := p.Will; w != nil && !c.superuser && !c.authorize(access.Publish, w.Topic, w.QoS, w.Retain) {
		b.log.Debug("will message not authorized at connect, discarded", "client", p.ClientID)
		c.clearWill()
	}

	// Keep alive [MQTT-3.1.2-24]: close after 1.5 × the keep alive.
	ka := p.KeepAlive
	serverKA := false
	// A keep alive of 0 (none) is only overridden when the operator set a
	// cap below the protocol's maximum.
	if max := b.opts.MaxKeepAlive; p.Version == mqtt.V5 && max > 0 && (ka > max || (ka == 0 && max < 65535)) {
		// [MQTT-3.2.2-21] the client must use the Server Keep Alive.
		ka = b.opts.MaxKeepAlive
		serverKA = true
	}
	if ka > 0 {
		c.keepAlive = time.Duration(ka) * time.Second * 3 / 2
		_ = c.nc.SetReadDeadline(time.Now().Add(c.keepAlive))
	} else {
		_ = c.nc.SetReadDeadline(time.Time{})
	}

	if p.Version == mqtt.V5 {
		if p.Props.Has(mqtt.PropMaximumPacketSize) {
			c.clientMaxPacket = p.Props.MaximumPacketSize
		}
		if p.Props.Has(mqtt.PropTopicAliasMaximum) {
			c.clientAliasMax = p.Props.TopicAliasMaximum
		}
		if p.Props.Has(mqtt.PropReceiveMaximum) {
			c.clientRecvMax = int(p.Props.ReceiveMaximum)
		}
	}

	// Session expiry.
	var expiry time.Duration
	never := false
	cappedExpiry := false
	if p.Version == mqtt.V5 {
		if p.Props.Has(mqtt.PropSessionExpiry) {
			if p.Props.SessionExpiry == 0xFFFFFFFF {
				never = true
			}
			expiry = time.Duration(p.Props.SessionExpiry) * time.Second
		}
		if max := b.opts.MaxSessionExpiry; max > 0 && (never || expiry > max) {
			expiry, never, cappedExpiry = max, false, true
		}
	} else if !p.CleanStart {
		expiry = b.opts.SessionExpiry
		if expiry <= 0 {
			never = true
		}
	}

	ack := &mqtt.Connack{}
	if p.Version == mqtt.V5 {
		pr := &ack.Props
		if assigned {
			pr.AssignedClientID = p.ClientID
			pr.Set(mqtt.PropAssignedClientID)
		}
		if serverKA {
			pr.ServerKeepAlive = ka
			pr.Set(mqtt.PropServerKeepAlive)
		}
		if cappedExpiry {
			pr.SessionExpiry = uint32(expiry / time.Second)
			pr.Set(mqtt.PropSessionExpiry)
		}
		if b.opts.ReceiveMaximum < 65535 {
			pr.ReceiveMaximum = uint16(b.opts.ReceiveMaximum)
			pr.Set(mqtt.PropReceiveMaximum)
		}
		pr.MaximumPacketSize = uint32(b.opts.MaxPacketSize)
		pr.Set(mqtt.PropMaximumPacketSize)
		if b.opts.MaxTopicAlias > 0 {
			pr.TopicAliasMaximum = b.opts.MaxTopicAlias
			pr.Set(mqtt.PropTopicAliasMaximum)
		}
		if b.opts.MaxQoS < 2 {
			pr.MaximumQoS = b.opts.MaxQoS
			pr.Set(mqtt.PropMaximumQoS)
		}
		if !b.opts.RetainAvailable {
			pr.RetainAvailable = 0
			pr.Set(mqtt.PropRetainAvailable)
		}
		if !b.opts.WildcardSubscription {
			pr.WildcardSubAvailable = 0
			pr.Set(mqtt.PropWildcardSubAvailable)
		}
		if !b.opts.SharedSubscription {
			pr.SharedSubAvailable = 0
			pr.Set(mqtt.PropSharedSubAvailable)
		}
	}
	b.attach(c, p, expiry, never, ack)
	return nil
}

// authenticate asks the Authenticator, or applies allow_anonymous.
func (c *conn) authenticate(p *mqtt.Connect) access.Decision {
	b := c.b
	if b.opts.Authenticator != nil {
		id := c.identity()
		id.Password = p.Password
		ctx, cancel := context.WithTimeout(b.ctx, authTimeout)
		d := b.opts.Authenticator.Authenticate(ctx, id)
		cancel()
		if d.Verdict != access.Ignore || d.Unavailable {
			return d
		}
	}
	allow, scope := b.opts.AllowAnonymous, ""
	if a := c.l.cfg.AllowAnonymous; a != nil {
		// The listener's own setting, e.g. anonymous on an internal one only.
		allow, scope = *a, c.l.ident+" "
	}
	if allow {
		return access.Decision{Verdict: access.Allow, Source: "anonymous", Reason: scope + "allow_anonymous = true"}
	}
	return access.Decision{Verdict: access.Deny, Source: "default", Reason: scope + "allow_anonymous = false"}
}

// attach binds c to the session of its client id: a new one, or the
// existing one resumed or discarded per clean start. An existing connection
// of the same client id is taken over [MQTT-3.1.4-3]. It then sends CONNACK,
// resends what was in flight and drains the queue, all under the session
// lock so that no delivery can overtake the CONNACK.
func (b *Broker) attach(c *conn, p *mqtt.Connect, expiry time.Duration, never bool, ack *mqtt.Connack) {
	b.mu.Lock()
	old := b.sessions[p.ClientID]
	var s *session
	present := false
	var takenOver *conn
	if old != nil {
		old.mu.Lock()
		takenOver = old.conn
		old.conn = nil
		old.online.Store(false)
		if old.expiryT != nil {
			old.expiryT.Stop()
			old.expiryT = nil
		}
		if old.willT != nil || old.willAtEnd != nil {
			if old.willT != nil {
				// [MQTT-3.1.3-9] a reconnect before the will delay cancels it.
				old.willT.Stop()
				old.willT = nil
			}
			if old.persisted {
				old.unlogWill()
			}
		}
		old.willAtEnd = nil
		if p.CleanStart {
			old.ended = true
		}
		old.mu.Unlock()
		if p.CleanStart {
			b.index.UnsubscribeAll(old)
			delete(b.sessions, p.ClientID)
			b.m.sessionDiscarded.Add(1)
			b.sessionEvent(events.SessionDiscarded, old, "discarded")
		} else {
			s = old
			present = true // [MQTT-3.2.2-3]
		}
	}
	if takenOver != nil {
		b.m.sessionTakenOver.Add(1)
		b.sessionEvent(events.SessionTakenOver, old, "takenover")
		takenOver.kick(mqtt.SessionTakenOver, "takenover")
	}
	if s == nil {
		s = newSession(b, p.ClientID)
		b.sessions[p.ClientID] = s
		b.m.sessionCreated.Add(1)
	}
	s.mu.Lock()
	b.mu.Unlock()

	s.conn = c
	s.online.Store(true)
	s.version = p.Version
	s.expiry, s.neverEnds = expiry, never
	s.username, s.usernameOK = p.Username, p.UsernameSet
	if b.store != nil && (expiry > 0 || never) && !s.persisted {
		s.persisted = true
		s.inc = b.newMessageID()
	}
	if s.persisted {
		s.logHeader(time.Time{})
	}
	c.sess = s
	c.aliasOut = nil
	ack.SessionPresent = present
	// Counted before the CONNACK goes out, so that a client that has its
	// CONNACK and asks the HTTP API for stats sees itself counted.
	b.m.connCount.Add(1)
	b.m.clientConnected.Add(1)
	b.m.connackSent.Add(1)
	if present {
		b.m.sessionResumed.Add(1)
	}
	// Encoded through the concrete type, so that the CONNACK (and its
	// properties) need not escape to the heap for every connection.
	c.writeEncoded(mqtt.CONNACK, func(dst []byte) ([]byte, error) { return ack.Encode(dst, c.version) })
	if present {
		s.resend()
		s.drain()
	}
	s.mu.Unlock()

	if present {
		b.sessionEvent(events.SessionResumed, s, "")
	} else {
		b.sessionEvent(events.SessionCreated, s, "")
	}
	if bus := b.opts.Events; bus.Wants(events.ClientConnack) {
		e := c.clientEvent(events.ClientConnack)
		bus.Publish(e)
	}
	if bus := b.opts.Events; bus.Wants(events.ClientConnected) {
		bus.Publish(c.clientEvent(events.ClientConnected))
	}
	b.log.Debug("client connected", "client", c.clientID, "peer", c.peer.String(), "proto", p.Version, "session_present", present)
	b.presence(c, true, "")
}

// detach runs when c ends: it publishes the will when due and keeps the
// session for its expiry or ends it.
func (b *Broker) detach(c *conn, why string) {
	s := c.sess
	b.m.clientDisconnected.Add(1)
	if bus := b.opts.Events; bus.Wants(events.ClientDisconnected) {
		e := c.clientEvent(events.ClientDisconnected)
		e.Reason = why
		bus.Publish(e)
	}
	b.presence(c, false, why)
	b.log.Debug("client disconnected", "client", c.clientID, "reason", why)

	s.mu.Lock()
	if s.conn != c {
		// Taken over: the session lives on with the new connection. The
		// will of this connection is due [MQTT-3.1.4-3] unless it has a
		// delay, which the resumed session cancels [MQTT-3.1.3-9]; a
		// session that the takeover ended (clean start) ends the delay.
		ended := s.ended
		s.mu.Unlock()
		if w := c.will(); w != nil && (ended || !w.Props.Has(mqtt.PropWillDelay) || w.Props.WillDelay == 0) {
			b.publishWill(c)
		}
		return
	}
	s.conn = nil
	s.online.Store(false)
	s.last = lastConn{peer: c.peer, listener: c.l.ident, protoName: c.info.protoName,
		cleanStart: c.info.cleanStart, keepAlive: c.info.keepAlive,
		connectedAt: c.connAt, disconnectedAt: time.Now()}
	persistent := s.expiry > 0 || s.neverEnds
	will := c.will()
	if !persistent {
		s.ended = true
		s.mu.Unlock()
		if will != nil {
			b.publishWill(c)
		}
		b.endSession(s, "normal")
		return
	}
	now := time.Now()
	if will != nil {
		delay := time.Duration(0)
		if will.Props.Has(mqtt.PropWillDelay) {
			delay = time.Duration(will.Props.WillDelay) * time.Second
		}
		if delay > 0 && (s.neverEnds || delay < s.expiry) {
			// [MQTT-3.1.3-9] the will waits for its delay unless the client
			// comes back first.
			s.armWill(c, delay)
			if s.persisted {
				s.logWill(c, now.Add(delay))
			}
		} else if delay == 0 {
			s.mu.Unlock()
			b.publishWill(c)
			s.mu.Lock()
		} else {
			// The session ends before the will delay: the will goes out
			// when the session ends.
			s.willAtEnd = c
			if s.persisted {
				s.logWill(c, now.Add(delay))
			}
		}
	}
	if s.persisted && s.conn == nil {
		s.logHeader(now)
	}
	if !s.neverEnds && s.conn == nil {
		exp := s.expiry
		s.expiryT = time.AfterFunc(exp, func() { b.expireSession(s, c) })
	}
	s.mu.Unlock()
}

// armWill publishes c's will after delay unless a connection attaches to
// the session first. Lock held.
func (s *session) armWill(c *conn, delay time.Duration) {
	b := s.b
	s.willT = time.AfterFunc(delay, func() {
		if b.ctx.Err() != nil {
			return // shutting down
		}
		s.mu.Lock()
		due := s.willT != nil && s.conn == nil
		s.willT = nil
		if due && s.persisted {
			s.unlogWill()
		}
		s.mu.Unlock()
		if due {
			b.publishWill(c)
		}
	})
}

// expireSession ends an offline session whose expiry passed
// [MQTT-4.1.0-2]. c is the connection it was last attached to, whose will
// is published now if it was delayed past the session's end.
func (b *Broker) expireSession(s *session, c *conn) {
	if b.ctx.Err() != nil {
		return // shutting down
	}
	b.mu.Lock()
	s.mu.Lock()
	if s.conn != nil || s.ended || b.sessions[s.id] != s {
		s.mu.Unlock()
		b.mu.Unlock()
		return
	}
	s.ended = true
	delete(b.sessions, s.id)
	pendingWill := s.willT != nil || (c != nil && s.willAtEnd == c)
	if s.willT != nil {
		s.willT.Stop()
		s.willT = nil
	}
	s.willAtEnd = nil
	s.expiryT = nil
	s.mu.Unlock()
	b.mu.Unlock()
	if pendingWill && c != nil {
		b.publishWill(c)
	}
	b.index.UnsubscribeAll(s)
	b.m.sessionTerminated.Add(1)
	b.sessionEvent(events.SessionTerminated, s, "expired")
}

// endSession removes a session that ended with its connection.
func (b *Broker) endSession(s *session, why string) {
	b.mu.Lock()
	if b.sessions[s.id] == s {
		delete(b.sessions, s.id)
	}
	b.mu.Unlock()
	b.index.UnsubscribeAll(s)
	b.m.sessionTerminated.Add(1)
	b.sessionEvent(events.SessionTerminated, s, why)
}

// handleDisconnect handles a client's DISCONNECT: the will is discarded
// unless v5 reason 0x04 asks for it [MQTT-3.14.4-3], and a v5 client may
// change its session expiry [MQTT-3.14.2-2].
func (c *conn) handleDisconnect(p *mqtt.Disconnect) error {
	b := c.b
	b.m.disconnectReceived.Add(1)
	if c.version == mqtt.V5 && p.Props.Has(mqtt.PropSessionExpiry) {
		s := c.sess
		s.mu.Lock()
		wasZero := s.expiry == 0 && !s.neverEnds
		s.mu.Unlock()
		if wasZero && p.Props.SessionExpiry != 0 {
			// [MQTT-3.14.2-2] from 0 to non-zero is a protocol error.
			c.setStop(mqtt.ProtocolError, "protocol_error")
			return errStop
		}
		s.mu.Lock()
		s.neverEnds = p.Props.SessionExpiry == 0xFFFFFFFF
		s.expiry = time.Duration(p.Props.SessionExpiry) * time.Second
		if max := b.opts.MaxSessionExpiry; max > 0 && (s.neverEnds || s.expiry > max) {
			s.expiry, s.neverEnds = max, false
		}
		s.mu.Unlock()
	}
	if c.version != mqtt.V5 || p.ReasonCode != mqtt.DisconnectWithWill {
		c.clearWill()
	}
	c.setStop(0, "normal")
	return errStop
}

// handleAuth answers AUTH: no enhanced authentication method is
// configured, so a client that sends AUTH breaks the protocol
// (MQTT 5.0 §4.12 and §3.15).
func (c *conn) handleAuth(*mqtt.Auth) error {
	c.b.m.authReceived.Add(1)
	c.setStop(mqtt.ProtocolError, "protocol_error")
	return errStop
}

// clientEvent builds a client.* event for c.
func (c *conn) clientEvent(k events.Kind) *events.Event {
	e := &events.Event{
		Kind:        k,
		ClientID:    c.clientID,
		Peer:        c.peer,
		Listener:    c.l.ident,
		ProtoVer:    byte(c.version),
		ConnectedAt: c.connAt,
	}
	if c.infoSet {
		i := &c.info
		e.Username, e.UsernameSet = i.username, i.usernameSet
		e.ProtoName = i.protoName
		e.KeepAlive = i.keepAlive
		e.CleanStart = i.cleanStart
		e.ExpiryInterval = i.expiry
	}
	return e
}

// protoName returns the protocol name as a constant string when it is one
// of the two the codec accepts, so that connections share it.
func protoName(s string) string {
	switch s {
	case "MQTT":
		return "MQTT"
	case "MQIsdp":
		return "MQIsdp"
	}
	return s
}

// sessionEvent publishes a session.* event. A session that ends
// (terminated or discarded, whoever ends it) is deleted from the log here,
// the one place every end goes through. Its callers do not hold s.mu,
// which the username is read under: a client that connects again with
// the same id sets it under s.mu while this runs.
func (b *Broker) sessionEvent(k events.Kind, s *session, reason string) {
	if k == events.SessionTerminated || k == events.SessionDiscarded {
		s.forget()
	}
	if bus := b.opts.Events; bus.Wants(k) {
		s.mu.Lock()
		user, userSet := s.username, s.usernameOK
		s.mu.Unlock()
		bus.Publish(&events.Event{Kind: k, ClientID: s.id, Username: user, UsernameSet: userSet, Reason: reason})
	}
}
