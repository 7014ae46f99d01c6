package api

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/mqgate/mqgate/access"
)

// defaultBanDuration is how long a ban lasts when "until" is not given, as
// in EMQX 4.
const defaultBanDuration = 5 * time.Minute

// Ban is one entry of the banned list: clients whose client id, username
// or peer address equals Who are refused at CONNECT until Until.
type Ban struct {
	Who    string // the client id, username, or peer IP text
	As     string // "clientid", "username" or "peerhost"
	By     string
	Reason string
	At     time.Time
	Until  time.Time
}

// BanList is the broker's banned list, safe for concurrent use. It is kept
// in memory: bans do not survive a restart.
type BanList struct {
	mu   sync.RWMutex
	bans map[[2]string]Ban // by (as, who)
	now  func() time.Time
}

// NewBanList returns an empty list.
func NewBanList() *BanList {
	return &BanList{bans: map[[2]string]Ban{}, now: time.Now}
}

// validAs reports whether as is a kind of ban.
func validAs(as string) bool {
	return as == "clientid" || as == "username" || as == "peerhost"
}

// Add adds or replaces the ban of (b.As, b.Who).
func (l *BanList) Add(b Ban) {
	if b.As == "peerhost" {
		if a, err := netip.ParseAddr(b.Who); err == nil {
			b.Who = a.Unmap().String()
		}
	}
	l.mu.Lock()
	l.bans[[2]string{b.As, b.Who}] = b
	l.mu.Unlock()
}

// Delete removes the ban of (as, who) and reports whether there was one.
func (l *BanList) Delete(as, who string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := [2]string{as, who}
	_, ok := l.bans[k]
	delete(l.bans, k)
	return ok
}

// List returns the bans in force, by kind and then by who; expired ones are
// removed.
func (l *BanList) List() []Ban {
	now := l.now()
	l.mu.Lock()
	out := make([]Ban, 0, len(l.bans))
	for k, b := range l.bans {
		if !now.Before(b.Until) {
			delete(l.bans, k)
			continue
		}
		out = append(out, b)
	}
	l.mu.Unlock()
	slices.SortFunc(out, func(x, y Ban) int {
		if c := strings.Compare(x.As, y.As); c != 0 {
			return c
		}
		return strings.Compare(x.Who, y.Who)
	})
	return out
}

// Banned reports whether id is banned now, and the ban.
func (l *BanList) Banned(id access.Identity) (Ban, bool) {
	now := l.now()
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.bans) == 0 {
		return Ban{}, false
	}
	keys := [][2]string{{"clientid", id.ClientID}}
	if id.Username != "" {
		keys = append(keys, [2]string{"username", id.Username})
	}
	if id.Peer.IsValid() {
		keys = append(keys, [2]string{"peerhost", id.Peer.Addr().Unmap().String()})
	}
	for _, k := range keys {
		if b, ok := l.bans[k]; ok && now.Before(b.Until) {
			return b, true
		}
	}
	return Ban{}, false
}

// Wrap returns an authenticator that refuses banned clients (CONNACK 0x8A
// for v5, 5 for 3.1.x) before asking next; next may be nil, in which case
// clients that are not banned get Ignore and allow_anonymous decides.
func (l *BanList) Wrap(next access.Authenticator) access.Authenticator {
	return access.AuthenticatorFunc(func(ctx context.Context, id access.Identity) access.Decision {
		if b, ok := l.Banned(id); ok {
			return access.Decision{Verdict: access.Deny, Refusal: access.Banned, Source: "banned", Reason: "banned as " + b.As + ": " + b.Reason}
		}
		if next == nil {
			return access.Decision{Verdict: access.Ignore}
		}
		return next.Authenticate(ctx, id)
	})
}

// banObject is EMQX 4's banned object; at and until are epoch seconds.
type banObject struct {
	Who    string `json:"who"`
	As     string `json:"as"`
	By     string `json:"by"`
	Reason string `json:"reason"`
	At     int64  `json:"at"`
	Until  int64  `json:"until"`
}

// GET /banned: paginate-style meta.
func (s *Server) bannedList(c echo.Context) error {
	page, limit, err := s.paging(c)
	if err != nil {
		return answer(c, err)
	}
	all := s.bans.List()
	items, _ := pageOf(all, page, limit)
	out := make([]banObject, 0, len(items))
	for _, b := range items {
		out = append(out, banObject{Who: b.Who, As: b.As, By: b.By, Reason: b.Reason, At: b.At.Unix(), Until: b.Until.Unix()})
	}
	return c.JSON(http.StatusOK, envelope{Code: CodeOK, Data: out, Meta: pageMeta{Page: page, Limit: limit, Count: len(all)}})
}

// POST /banned: who and as are required; by defaults to "user", at to now
// and until to five minutes later.
func (s *Server) bannedAdd(c echo.Context) error {
	raw, err := readBody(c)
	if err != nil {
		return err
	}
	f, err := decodeFields(raw)
	if err != nil {
		return answer(c, err)
	}
	if !f.has("who") || !f.has("as") {
		return fail(c, CodeMissingParam, "missing mandatory params: ['who', 'as']")
	}
	now := s.bans.now()
	b := Ban{}
	var at, until int64
	if b.Who, err = f.str("who", ""); err == nil {
		b.As, err = f.str("as", "")
	}
	if err == nil {
		b.By, err = f.str("by", "user")
	}
	if err == nil {
		b.Reason, err = f.str("reason", "")
	}
	if err == nil {
		at, err = f.integer("at", now.Unix())
	}
	if err == nil {
		until, err = f.integer("until", now.Add(defaultBanDuration).Unix())
	}
	if err != nil {
		return answer(c, err)
	}
	if !validAs(b.As) {
		return errConvert(c, b.As, "clientid | username | peerhost")
	}
	if b.As == "peerhost" {
		if _, err := netip.ParseAddr(b.Who); err != nil {
			return errConvert(c, b.Who, "ip address")
		}
	}
	b.At, b.Until = time.Unix(at, 0), time.Unix(until, 0)
	s.bans.Add(b)
	return reply(c, banObject{Who: b.Who, As: b.As, By: b.By, Reason: b.Reason, At: at, Until: until})
}

// DELETE /banned/:as/:who.
func (s *Server) bannedDelete(c echo.Context) error {
	as := c.Param("as")
	who, err := url.PathUnescape(c.Param("who"))
	if err != nil {
		return errConvert(c, c.Param("who"), "binary")
	}
	if !validAs(as) {
		return errConvert(c, as, "clientid | username | peerhost")
	}
	s.bans.Delete(as, who)
	return replyOK(c)
}
