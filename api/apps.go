package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mqgate/mqgate/store"
)

// Errors of the application store.
var (
	ErrAppExists   = errors.New("api: application already exists")
	ErrAppNotFound = errors.New("api: no such application")
	ErrAppStatic   = errors.New("api: application is set in the configuration")
)

// App is one application allowed to use the API (HTTP Basic user AppID,
// password AppSecret). Only a digest of the secret is kept.
type App struct {
	ID      string    `json:"app_id"`
	Name    string    `json:"name"`
	Desc    string    `json:"desc"`
	Digest  string    `json:"secret_sha256"` // hex SHA-256 of the secret
	Created time.Time `json:"created_at"`
	Static  bool      `json:"-"` // from the configuration: not stored, not deletable
}

// AppStore holds the applications: those of the configuration and those
// added at run time, which are saved in a file.
type AppStore struct {
	path string // "" keeps added applications in memory only

	mu   sync.RWMutex
	apps map[string]App
}

// NewAppStore returns a store holding the static applications (AppID →
// AppSecret) and those saved in path, which may not exist yet. An empty
// path keeps added applications in memory.
func NewAppStore(static map[string]string, path string) (*AppStore, error) {
	s := &AppStore{path: path, apps: map[string]App{}}
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("api: read applications: %w", err)
		default:
			var saved []App
			if err := json.Unmarshal(data, &saved); err != nil {
				return nil, fmt.Errorf("api: applications file %s: %w", path, err)
			}
			for _, a := range saved {
				s.apps[a.ID] = a
			}
		}
	}
	for id, secret := range static {
		if id == "" || secret == "" {
			return nil, fmt.Errorf("api: application %q has an empty id or secret", id)
		}
		s.apps[id] = App{ID: id, Name: id, Digest: digest(secret), Static: true}
	}
	return s, nil
}

func digest(secret string) string {
	d := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(d[:])
}

// Check reports whether secret is the AppSecret of id. The secrets are
// compared as SHA-256 digests in constant time, so neither their content
// nor their length leaks through timing.
func (s *AppStore) Check(id, secret string) bool {
	s.mu.RLock()
	a, known := s.apps[id]
	s.mu.RUnlock()
	want := a.Digest
	if !known {
		want = digest("\x00unknown application") // same work for an unknown id
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(digest(secret))) == 1 && known
}

// usesSecret reports whether a static application has the secret.
func (s *AppStore) usesSecret(secret string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := digest(secret)
	for id, a := range s.apps {
		if a.Digest == d {
			return id, true
		}
	}
	return "", false
}

// Len returns the number of applications.
func (s *AppStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.apps)
}

// List returns the applications sorted by id.
func (s *AppStore) List() []App {
	s.mu.RLock()
	out := make([]App, 0, len(s.apps))
	for _, a := range s.apps {
		out = append(out, a)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(x, y App) int {
		switch {
		case x.ID < y.ID:
			return -1
		case x.ID > y.ID:
			return 1
		}
		return 0
	})
	return out
}

// Insert adds an application with a new random secret, saves the store and
// returns the secret (the only time it is available).
func (s *AppStore) Insert(id, name, desc string) (string, error) {
	if id == "" {
		return "", errors.New("api: an application id is required")
	}
	var r [24]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("api: generate secret: %w", err)
	}
	secret := hex.EncodeToString(r[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.apps[id]; ok {
		return "", fmt.Errorf("%w: %q", ErrAppExists, id)
	}
	s.apps[id] = App{ID: id, Name: name, Desc: desc, Digest: digest(secret), Created: time.Now().UTC().Truncate(time.Second)}
	if err := s.save(); err != nil {
		delete(s.apps, id)
		return "", err
	}
	return secret, nil
}

// Delete removes an application added at run time.
func (s *AppStore) Delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[id]
	switch {
	case !ok:
		return fmt.Errorf("%w: %q", ErrAppNotFound, id)
	case a.Static:
		return fmt.Errorf("%w: %q", ErrAppStatic, id)
	}
	delete(s.apps, id)
	if err := s.save(); err != nil {
		s.apps[id] = a
		return err
	}
	return nil
}

// save writes the run-time applications to the file atomically. Lock held.
func (s *AppStore) save() error {
	if s.path == "" {
		return nil
	}
	var saved []App
	for _, a := range s.apps {
		if !a.Static {
			saved = append(saved, a)
		}
	}
	data, err := json.MarshalIndent(emptyIfNil(saved), "", "  ")
	if err != nil {
		return fmt.Errorf("api: encode applications: %w", err)
	}
	if err := store.WriteFileAtomic(s.path, data); err != nil {
		return fmt.Errorf("api: save applications: %w", err)
	}
	return nil
}

// appObject is an application as the API lists it (never its secret).
type appObject struct {
	AppID  string `json:"app_id"`
	Name   string `json:"name"`
	Desc   string `json:"desc"`
	Status bool   `json:"status"`
	Static bool   `json:"static"`
}

// GET /apps.
func (s *Server) appsList(c echo.Context) error {
	apps := s.apps.List()
	out := make([]appObject, 0, len(apps))
	for _, a := range apps {
		out = append(out, appObject{AppID: a.ID, Name: a.Name, Desc: a.Desc, Status: true, Static: a.Static})
	}
	return reply(c, out)
}

// POST /apps {app_id, name, desc}: data is {app_id, secret}.
func (s *Server) appsInsert(c echo.Context) error {
	raw, err := readBody(c)
	if err != nil {
		return err
	}
	f, err := decodeFields(raw)
	if err != nil {
		return answer(c, err)
	}
	if !f.has("app_id") {
		return fail(c, CodeMissingParam, "missing mandatory params: ['app_id']")
	}
	var id, name, desc string
	if id, err = f.str("app_id", ""); err == nil {
		if name, err = f.str("name", id); err == nil {
			desc, err = f.str("desc", "")
		}
	}
	if err != nil {
		return answer(c, err)
	}
	secret, err := s.apps.Insert(id, name, desc)
	switch {
	case errors.Is(err, ErrAppExists):
		return fail(c, CodeUserExists, "%s", err.Error())
	case err != nil:
		return fail(c, CodeUnknown, "%s", err.Error())
	}
	return c.JSON(http.StatusOK, envelope{Code: CodeOK, Data: map[string]string{"app_id": id, "secret": secret}})
}

// DELETE /apps/:appid.
func (s *Server) appsDelete(c echo.Context) error {
	id, ok := param(c, "appid")
	if !ok {
		return errConvert(c, c.Param("appid"), "binary")
	}
	err := s.apps.Delete(id)
	switch {
	case errors.Is(err, ErrAppNotFound):
		return fail(c, CodeUserNotFound, "%s", err.Error())
	case errors.Is(err, ErrAppStatic):
		return fail(c, CodeAdminDelete, "%s", err.Error())
	case err != nil:
		return fail(c, CodeUnknown, "%s", err.Error())
	}
	return replyOK(c)
}
