// Package log writes a component's log lines into the host's logger through
// wapr_log_v1, at slog's levels, with key/value pairs:
//
//	log.Info("connected", "addr", addr, "db", 3)
//
// sends the line `connected addr=127.0.0.1:6379 db=3` at level Info. The
// host adds the component's name and drops lines below its level; the guest
// asks first (log_enabled), so a disabled level costs one host call and no
// formatting.
//
// Values print without fmt (which would add ~350 KB to a module): strings,
// []byte, errors, fmt.Stringer values, bools, integers, floats and
// time.Time (RFC 3339) are supported; anything else prints as "?". A value
// with spaces, quotes, '=' or control characters is quoted. A key without a
// value prints as !BADKEY=key.
//
// In a native build (tests), lines go to stderr through log/slog.
//
// The package name shadows the standard library's log; import it as is, or
// as guestlog where both are needed.
package log

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Levels, as slog numbers them (abi.LogDebug…abi.LogError).
const (
	LevelDebug int32 = -4
	LevelInfo  int32 = 0
	LevelWarn  int32 = 4
	LevelError int32 = 8
)

// Debug logs at level Debug.
func Debug(msg string, kv ...any) { Log(LevelDebug, msg, kv...) }

// Info logs at level Info.
func Info(msg string, kv ...any) { Log(LevelInfo, msg, kv...) }

// Warn logs at level Warn.
func Warn(msg string, kv ...any) { Log(LevelWarn, msg, kv...) }

// Error logs at level Error.
func Error(msg string, kv ...any) { Log(LevelError, msg, kv...) }

// Log logs at level, if the host logs that level.
func Log(level int32, msg string, kv ...any) {
	if !Enabled(level) {
		return
	}
	write(level, msg, kv)
}

// Enabled reports whether the host logs level; use it to skip expensive
// preparation of log arguments.
func Enabled(level int32) bool { return enabled(level) }

// Format renders msg and kv as one line: msg k1=v1 k2=v2.
func Format(msg string, kv ...any) string {
	b := make([]byte, 0, len(msg)+16*len(kv))
	b = append(b, msg...)
	for i := 0; i < len(kv); i += 2 {
		b = append(b, ' ')
		if i+1 == len(kv) {
			b = append(b, "!BADKEY="...)
			b = appendValue(b, kv[i])
			break
		}
		if k, ok := kv[i].(string); ok {
			b = appendText(b, k)
		} else {
			b = appendValue(b, kv[i])
		}
		b = append(b, '=')
		b = appendValue(b, kv[i+1])
	}
	return string(b)
}

func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "<nil>"...)
	case string:
		return appendText(b, v)
	case []byte:
		return appendText(b, string(v))
	case error:
		return appendText(b, v.Error())
	case time.Time:
		return append(b, v.Format(time.RFC3339Nano)...)
	case interface{ String() string }:
		return appendText(b, v.String())
	case bool:
		return strconv.AppendBool(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int8:
		return strconv.AppendInt(b, int64(v), 10)
	case int16:
		return strconv.AppendInt(b, int64(v), 10)
	case int32:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case uint:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint8:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	case uintptr:
		return strconv.AppendUint(b, uint64(v), 10)
	case float32:
		return strconv.AppendFloat(b, float64(v), 'g', -1, 32)
	case float64:
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return append(b, '?')
}

// appendText appends s, quoted when it would not read back as one token.
func appendText(b []byte, s string) []byte {
	if needsQuote(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == '=' || c == '"' || c == 0x7f {
				return true
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return true
		}
		i += n
	}
	return false
}
