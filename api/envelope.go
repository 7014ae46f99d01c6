package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// Error codes of the EMQX 4 API envelope. Business errors are answered with
// HTTP 200 and one of these in "code".
const (
	CodeOK            = 0
	CodeRPC           = 101 // the node is unknown or unreachable
	CodeUnknown       = 102
	CodeUserNotFound  = 105 // no such application
	CodeAdminDelete   = 106 // a configured application cannot be deleted
	CodeMissingParam  = 107
	CodeParamType     = 108
	CodeNotJSON       = 109
	CodeNotOnline     = 112 // client not online
	CodeUserExists    = 113 // application already exists
	CodeBadTopic      = 115
	CodeBadQoS        = 116
	defaultPage       = 1
	dateTimeFormat    = "2006-01-02 15:04:05"
	messageBadParams  = "bad_params"
	messageBadTopic   = "bad_topic"
	messageNotOnline  = "not_found"
	messageBadQoS     = "bad_qos"
	messageBadRequest = "request parameter is not json"
)

// envelope is EMQX 4's response body: {"code":0,"data":..,"meta":..}, or
// {"code":N,"message":".."} for an error.
type envelope struct {
	Code    int    `json:"code"`
	Data    any    `json:"data,omitempty"`
	Meta    any    `json:"meta,omitempty"`
	Message string `json:"message,omitempty"`
}

// queryMeta is the paging meta of clients and subscriptions.
type queryMeta struct {
	Page    int  `json:"page"`
	Limit   int  `json:"limit"`
	HasNext bool `json:"hasnext"`
	Count   int  `json:"count"`
}

// pageMeta is the paging meta of routes.
type pageMeta struct {
	Page  int `json:"page"`
	Limit int `json:"limit"`
	Count int `json:"count"`
}

// reply answers {"code":0,"data":data}; a nil slice becomes [].
func reply(c echo.Context, data any) error {
	return c.JSON(http.StatusOK, envelope{Code: CodeOK, Data: data})
}

// replyOK answers {"code":0}.
func replyOK(c echo.Context) error {
	return c.JSON(http.StatusOK, envelope{Code: CodeOK})
}

// fail answers a business error: HTTP 200 with code and message, as EMQX.
func fail(c echo.Context, code int, format string, args ...any) error {
	return c.JSON(http.StatusOK, envelope{Code: code, Message: fmt.Sprintf(format, args...)})
}

// errConvert is EMQX's answer to a parameter of the wrong type.
func errConvert(c echo.Context, v, typ string) error {
	return fail(c, CodeParamType, "Can't convert %s to %s type", v, typ)
}

// paging reads _page and _limit; a bad value is an apiError.
func (s *Server) paging(c echo.Context) (page, limit int, err error) {
	page, limit = defaultPage, s.opts.MaxRowLimit
	if v := c.QueryParam("_page"); v != "" {
		n, e := strconv.Atoi(v)
		if e != nil || n < 1 {
			return 0, 0, errCode(CodeParamType, "Can't convert %s to integer type", v)
		}
		page = n
	}
	if v := c.QueryParam("_limit"); v != "" {
		n, e := strconv.Atoi(v)
		if e != nil || n < 1 {
			return 0, 0, errCode(CodeParamType, "Can't convert %s to integer type", v)
		}
		limit = min(n, s.opts.MaxRowLimit)
	}
	return page, limit, nil
}

// pageOf returns the items of page (1-based) of size limit, and whether a
// later page has items.
func pageOf[T any](items []T, page, limit int) ([]T, bool) {
	// Checked before multiplying: a huge _page must not wrap around.
	if limit < 1 || page < 1 || page-1 > len(items)/limit {
		return []T{}, false
	}
	from := (page - 1) * limit
	if from >= len(items) {
		return []T{}, false
	}
	to := min(from+limit, len(items))
	return items[from:to], to < len(items)
}

// emptyIfNil makes a nil slice encode as [] rather than null.
func emptyIfNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
