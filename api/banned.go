package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mqgate/mqgate/access"
	"github.com/mqgate/mqgate/store"
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

// BanList is the broker's banned list, safe for concurrent use. A list
// opened with OpenBanList is saved to its file on every change, so that bans
// survive a restart as they do in EMQX 4 (which keeps them in a disc table).
type BanList struct {
	mu   sync.RWMutex
	bans map[[2]string]Ban // by (as, who)
	now  func() time.Time
	path string // "" keeps the list in memory only
}

// NewBanList returns an empty list kept in memory only.
func NewBanList() *BanList {
	return &BanList{bans: map[[2]string]Ban{}, now: time.Now}
}

// OpenBanList returns the list saved in path (a JSON array of bans), empty
// when the file does not exist yet; every change is saved there. Bans that
// have expired are dropped.
func OpenBanList(path string) (*BanList, error) {
	l := NewBanList()
	l.path = path
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("api: read banned list: %w", err)
	}
	var saved []banObject
	if err := json.Unmarshal(data, &saved); err != nil {
		return nil, fmt.Errorf("api: banned list %s: %w", path, err)
	}
	now := l.now()
	for _, o := range saved {
		if !validAs(o.As) {
			return nil, fmt.Errorf("api: banned list %s: ban of %q as %q: %w", path, o.Who, o.As, errBadAs)
		}
		b := Ban{Who: o.Who, As: o.As, By: o.By, Reason: o.Reason, At: time.Unix(o.At, 0), Until: time.Unix(o.Until, 0)}
		if now.Before(b.Until) {
			l.bans[[2]string{b.As, b.Who}] = b
		}
	}
	return l, nil
}

// errBadAs is a ban whose kind is not clientid, username or peerhost.
var errBadAs = errors.New("as must be clientid, username or peerhost")

// save writes the list to its file; l.mu must be held.
func (l *BanList) save() error {
	if l.path == "" {
		return nil
	}
	out := make([]banObject, 0, len(l.bans))
	for _, b := range l.bans {
		out = append(out, b.object())
	}
	slices.SortFunc(out, func(x, y banObject) int {
		if c := strings.Compare(x.As, y.As); c != 0 {
			return c
		}
		return strings.Compare(x.Who, y.Who)
	})
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("api: encode banned list: %w", err)
	}
	if err := store.WriteFileAtomic(l.path, data); err != nil {
		return fmt.Errorf("api: save banned list: %w", err)
	}
	return nil
}

// validAs reports whether as is a kind of ban.
func validAs(as string) bool {
	return as == "clientid" || as == "username" || as == "peerhost"
}

// Add adds or replaces the ban of (b.As, b.Who). The ban is in force even
// when saving it fails; the error says it will not survive a restart.
func (l *BanList) Add(b Ban) error {
	if b.As == "peerhost" {
		if a, err := netip.ParseAddr(b.Who); err == nil {
			b.Who = a.Unmap().String()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bans[[2]string{b.As, b.Who}] = b
	return l.save()
}

// Delete removes the ban of (as, who) and reports whether there was one.
func (l *BanList) Delete(as, who string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := [2]string{as, who}
	_, ok := l.bans[k]
	if !ok {
		return false, nil
	}
	delete(l.bans, k)
	return true, l.save()
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

// banObject is EMQX 4's banned object; at and until are epoch seconds. It
// is also the form of the saved list.
type banObject struct {
	Who    string `json:"who"`
	As     string `json:"as"`
	By     string `json:"by"`
	Reason string `json:"reason"`
	At     int64  `json:"at"`
	Until  int64  `json:"until"`
}

func (b Ban) object() banObject {
	return banObject{Who: b.Who, As: b.As, By: b.By, Reason: b.Reason, At: b.At.Unix(), Until: b.Until.Unix()}
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
		out = append(out, b.object())
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
	if err := s.bans.Add(b); err != nil {
		s.log.Error("ban not saved", "as", b.As, "err", err)
		return fail(c, CodeUnknown, "banned until restart only: %s", err.Error())
	}
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
	if _, err := s.bans.Delete(as, who); err != nil {
		s.log.Error("ban removal not saved", "as", as, "err", err)
		return fail(c, CodeUnknown, "ban lifted until restart only: %s", err.Error())
	}
	return replyOK(c)
}
