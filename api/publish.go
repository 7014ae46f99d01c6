package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/mqgate/mqgate/broker"
	"github.com/mqgate/mqgate/mqtt"
)

// maxBody bounds a request body of /mqtt/*.
const maxBody = 16 << 20

// apiError is a business error answered with its EMQX code.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errCode(code int, format string, args ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// readBody reads the JSON body of c. A body that is not JSON is answered
// with HTTP 400 and code 109.
func readBody(c echo.Context) (json.RawMessage, error) {
	data, err := io.ReadAll(io.LimitReader(c.Request().Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("api: read body: %w", err)
	}
	if len(data) > maxBody {
		return nil, echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body too large")
	}
	if !json.Valid(data) {
		return nil, echo.NewHTTPError(http.StatusBadRequest, messageBadRequest)
	}
	return data, nil
}

// answer turns err into the envelope: an apiError is a business error, any
// other error goes to the error handler.
func answer(c echo.Context, err error) error {
	var ae *apiError
	if errors.As(err, &ae) {
		return fail(c, ae.code, "%s", ae.msg)
	}
	return err
}

// fields is a JSON object whose values are decoded on demand, so that a
// value of the wrong type can be reported with code 108.
type fields map[string]json.RawMessage

func decodeFields(raw json.RawMessage) (fields, error) {
	var f fields
	if err := json.Unmarshal(raw, &f); err != nil || f == nil {
		return nil, errCode(CodeParamType, messageBadParams)
	}
	return f, nil
}

func (f fields) has(key string) bool {
	v, ok := f[key]
	return ok && string(v) != "null"
}

// str decodes a string field; def when absent.
func (f fields) str(key, def string) (string, error) {
	if !f.has(key) {
		return def, nil
	}
	var s string
	if err := json.Unmarshal(f[key], &s); err != nil {
		return "", errCode(CodeParamType, "Can't convert %s to binary type", f[key])
	}
	return s, nil
}

// integer decodes an integer field; def when absent.
func (f fields) integer(key string, def int64) (int64, error) {
	if !f.has(key) {
		return def, nil
	}
	var n int64
	if err := json.Unmarshal(f[key], &n); err != nil {
		return 0, errCode(CodeParamType, "Can't convert %s to integer type", f[key])
	}
	return n, nil
}

// boolean decodes a boolean field; def when absent.
func (f fields) boolean(key string, def bool) (bool, error) {
	if !f.has(key) {
		return def, nil
	}
	var b bool
	if err := json.Unmarshal(f[key], &b); err != nil {
		return false, errCode(CodeParamType, "Can't convert %s to boolean type", f[key])
	}
	return b, nil
}

// qos decodes the qos field (default 0): 116 when not 0, 1 or 2.
func (f fields) qos() (byte, error) {
	n, err := f.integer("qos", 0)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > 2 {
		return 0, errCode(CodeBadQoS, messageBadQoS)
	}
	return byte(n), nil
}

// topicList returns "topic" and the comma list "topics", in that order.
func (f fields) topicList() ([]string, error) {
	var out []string
	t, err := f.str("topic", "")
	if err != nil {
		return nil, err
	}
	if t != "" {
		out = append(out, t)
	}
	ts, err := f.str("topics", "")
	if err != nil {
		return nil, err
	}
	for _, t := range strings.Split(ts, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out, nil
}

// publishRequest is one decoded publish body.
type publishRequest struct {
	topics []string
	msg    broker.Message
	ret    bool
}

// parsePublish decodes a publish body (EMQX 4 §1.6). Topic names that are
// not valid are dropped; none left is 115.
func parsePublish(raw json.RawMessage) (publishRequest, error) {
	var r publishRequest
	f, err := decodeFields(raw)
	if err != nil {
		return r, err
	}
	ts, err := f.topicList()
	if err != nil {
		return r, err
	}
	for _, t := range ts {
		// [MQTT-3.3.2-2] a topic name has no wildcards.
		if mqtt.ValidTopicName(t) == nil {
			r.topics = append(r.topics, t)
		}
	}
	if len(r.topics) == 0 {
		return r, errCode(CodeBadTopic, messageBadTopic)
	}
	if r.msg.From, err = f.str("clientid", ""); err != nil {
		return r, err
	}
	enc, err := f.str("encoding", "plain")
	if err != nil {
		return r, err
	}
	if f.has("payload") {
		var s string
		if json.Unmarshal(f["payload"], &s) == nil {
			r.msg.Payload = []byte(s)
		} else {
			// A JSON object, array or number is sent as its JSON text.
			r.msg.Payload = []byte(f["payload"])
		}
	}
	switch enc {
	case "plain":
	case "base64":
		p, err := base64.StdEncoding.DecodeString(string(r.msg.Payload))
		if err != nil {
			return r, errCode(CodeParamType, "Can't decode payload as base64")
		}
		r.msg.Payload = p
	default:
		return r, errCode(CodeParamType, "Can't convert %s to encoding type", enc)
	}
	if r.msg.QoS, err = f.qos(); err != nil {
		return r, err
	}
	if r.msg.Retain, err = f.boolean("retain", false); err != nil {
		return r, err
	}
	r.ret = f.has("return")
	props := &mqtt.Properties{}
	if f.has("properties") {
		if err := parseProps(f["properties"], props); err != nil {
			return r, err
		}
	}
	if f.has("user_properties") {
		if err := parseUserProps(f["user_properties"], props); err != nil {
			return r, err
		}
	}
	if !props.Empty() {
		r.msg.Props = props
	}
	return r, nil
}

// parseProps reads the MQTT 5 "properties" object of a publish body; an
// unknown key is 108.
func parseProps(raw json.RawMessage, p *mqtt.Properties) error {
	f, err := decodeFields(raw)
	if err != nil {
		return err
	}
	for key := range f {
		switch key {
		case "payload_format_indicator":
			n, err := f.integer(key, 0)
			if err != nil || n < 0 || n > 1 {
				return errCode(CodeParamType, "Can't convert %s to payload_format_indicator", f[key])
			}
			p.PayloadFormat = byte(n)
			p.Set(mqtt.PropPayloadFormat)
		case "message_expiry_interval":
			n, err := f.integer(key, 0)
			if err != nil || n < 0 || n > 0xFFFFFFFF {
				return errCode(CodeParamType, "Can't convert %s to message_expiry_interval", f[key])
			}
			p.MessageExpiry = uint32(n)
			p.Set(mqtt.PropMessageExpiry)
		case "response_topic":
			s, err := f.str(key, "")
			if err != nil {
				return err
			}
			if mqtt.ValidTopicName(s) != nil {
				return errCode(CodeBadTopic, messageBadTopic)
			}
			p.ResponseTopic = s
			p.Set(mqtt.PropResponseTopic)
		case "correlation_data":
			s, err := f.str(key, "")
			if err != nil {
				return err
			}
			p.CorrelationData = []byte(s)
			p.Set(mqtt.PropCorrelationData)
		case "content_type":
			s, err := f.str(key, "")
			if err != nil {
				return err
			}
			p.ContentType = s
			p.Set(mqtt.PropContentType)
		case "user_properties":
			if err := parseUserProps(f[key], p); err != nil {
				return err
			}
		case "subscription_identifier":
			// Identifiers are per subscriber [MQTT-3.3.4-6]; accepted
			// and not forwarded.
		default:
			return errCode(CodeParamType, "unknown property %s", key)
		}
	}
	return nil
}

// parseUserProps reads user properties given as an object of strings.
func parseUserProps(raw json.RawMessage, p *mqtt.Properties) error {
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return errCode(CodeParamType, "Can't convert %s to user_properties", raw)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p.User = append(p.User, mqtt.UserProperty{Key: k, Value: m[k]})
	}
	if len(p.User) > 0 {
		p.Set(mqtt.PropUserProperty)
	}
	return nil
}

// publishOne routes r to each of its topics and returns the message ids.
func (s *Server) publishOne(r publishRequest) ([]string, error) {
	ids := make([]string, 0, len(r.topics))
	for _, t := range r.topics {
		m := r.msg
		m.Topic = t
		id, _, err := s.opts.Broker.Publish(m)
		if err != nil {
			if errors.Is(err, broker.ErrBadTopic) {
				return nil, errCode(CodeBadTopic, messageBadTopic)
			}
			return nil, errCode(CodeParamType, "%s", err.Error())
		}
		ids = append(ids, fmt.Sprintf("%016X", id))
	}
	return ids, nil
}

// POST /mqtt/publish.
func (s *Server) publish(c echo.Context) error {
	raw, err := readBody(c)
	if err != nil {
		return err
	}
	r, err := parsePublish(raw)
	if err != nil {
		return answer(c, err)
	}
	ids, err := s.publishOne(r)
	if err != nil {
		return answer(c, err)
	}
	if !r.ret {
		return replyOK(c)
	}
	if len(ids) == 1 {
		return reply(c, map[string]string{"msgid": ids[0]})
	}
	return reply(c, map[string][]string{"msgids": ids})
}

// batchItems splits a JSON array body.
func batchItems(c echo.Context) ([]json.RawMessage, error) {
	raw, err := readBody(c)
	if err != nil {
		return nil, err
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, errCode(CodeParamType, messageBadParams)
	}
	return items, nil
}

// POST /mqtt/publish_batch: data is [{topic, code}] per item.
func (s *Server) publishBatch(c echo.Context) error {
	items, err := batchItems(c)
	if err != nil {
		return answer(c, err)
	}
	type result struct {
		Topic   string `json:"topic"`
		Code    int    `json:"code"`
		Message string `json:"message,omitempty"`
	}
	out := make([]result, 0, len(items))
	for _, raw := range items {
		r, err := parsePublish(raw)
		if err == nil {
			_, err = s.publishOne(r)
		}
		topic := strings.Join(r.topics, ",")
		if topic == "" {
			if f, e := decodeFields(raw); e == nil {
				topic, _ = f.str("topic", "")
			}
		}
		var ae *apiError
		switch {
		case err == nil:
			out = append(out, result{Topic: topic, Code: CodeOK})
		case errors.As(err, &ae):
			out = append(out, result{Topic: topic, Code: ae.code, Message: ae.msg})
		default:
			return err
		}
	}
	return reply(c, out)
}

// subscribeRequest is one decoded subscribe or unsubscribe body.
type subscribeRequest struct {
	clientID string
	topics   []string
	qos      byte
}

func parseSubscribe(raw json.RawMessage, withQoS bool) (subscribeRequest, error) {
	var r subscribeRequest
	f, err := decodeFields(raw)
	if err != nil {
		return r, err
	}
	if !f.has("clientid") {
		return r, errCode(CodeMissingParam, "missing mandatory params: ['clientid']")
	}
	if r.clientID, err = f.str("clientid", ""); err != nil {
		return r, err
	}
	ts, err := f.topicList()
	if err != nil {
		return r, err
	}
	for _, t := range ts {
		if mqtt.ValidTopicFilter(t) == nil {
			r.topics = append(r.topics, t)
		}
	}
	if len(r.topics) == 0 {
		return r, errCode(CodeBadTopic, messageBadTopic)
	}
	if withQoS {
		if r.qos, err = f.qos(); err != nil {
			return r, err
		}
	}
	return r, nil
}

func (s *Server) subscribeOne(r subscribeRequest) error {
	for _, t := range r.topics {
		if err := s.opts.Broker.SubscribeFor(r.clientID, t, r.qos); err != nil {
			return brokerErr(err)
		}
	}
	return nil
}

func (s *Server) unsubscribeOne(r subscribeRequest) error {
	for _, t := range r.topics {
		if _, err := s.opts.Broker.UnsubscribeFor(r.clientID, t); err != nil {
			return brokerErr(err)
		}
	}
	return nil
}

// brokerErr maps a broker administration error to its EMQX code.
func brokerErr(err error) error {
	switch {
	case errors.Is(err, broker.ErrNoClient):
		return errCode(CodeNotOnline, messageNotOnline)
	case errors.Is(err, broker.ErrBadTopic):
		return errCode(CodeBadTopic, messageBadTopic)
	case errors.Is(err, broker.ErrBadQoS):
		return errCode(CodeBadQoS, messageBadQoS)
	}
	return err
}

// POST /mqtt/subscribe.
func (s *Server) subscribe(c echo.Context) error {
	raw, err := readBody(c)
	if err != nil {
		return err
	}
	r, err := parseSubscribe(raw, true)
	if err == nil {
		err = s.subscribeOne(r)
	}
	if err != nil {
		return answer(c, err)
	}
	return replyOK(c)
}

// POST /mqtt/unsubscribe.
func (s *Server) unsubscribe(c echo.Context) error {
	raw, err := readBody(c)
	if err != nil {
		return err
	}
	r, err := parseSubscribe(raw, false)
	if err == nil {
		err = s.unsubscribeOne(r)
	}
	if err != nil {
		return answer(c, err)
	}
	return replyOK(c)
}

// batchResult is one item of a subscribe or unsubscribe batch.
type batchResult struct {
	ClientID string `json:"clientid"`
	Topic    string `json:"topic"`
	Code     int    `json:"code"`
	Message  string `json:"message,omitempty"`
}

func (s *Server) subBatch(c echo.Context, withQoS bool, do func(subscribeRequest) error) error {
	items, err := batchItems(c)
	if err != nil {
		return answer(c, err)
	}
	out := make([]batchResult, 0, len(items))
	for _, raw := range items {
		r, err := parseSubscribe(raw, withQoS)
		if err == nil {
			err = do(r)
		}
		res := batchResult{ClientID: r.clientID, Topic: strings.Join(r.topics, ",")}
		var ae *apiError
		switch {
		case err == nil:
		case errors.As(err, &ae):
			res.Code, res.Message = ae.code, ae.msg
		default:
			return err
		}
		out = append(out, res)
	}
	return reply(c, out)
}

// POST /mqtt/subscribe_batch.
func (s *Server) subscribeBatch(c echo.Context) error {
	return s.subBatch(c, true, s.subscribeOne)
}

// POST /mqtt/unsubscribe_batch.
func (s *Server) unsubscribeBatch(c echo.Context) error {
	return s.subBatch(c, false, s.unsubscribeOne)
}
