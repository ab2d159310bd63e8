//go:build wasip1

package log

import "unsafe"

//go:wasmimport wapr_log_v1 log
func hostLog(level int32, ptr unsafe.Pointer, n uint32)

//go:wasmimport wapr_log_v1 log_enabled
func hostLogEnabled(level int32) int32

func enabled(level int32) bool { return hostLogEnabled(level) == 1 }

func write(level int32, msg string, kv []any) {
	line := msg
	if len(kv) > 0 {
		line = Format(msg, kv...)
	}
	if line == "" {
		hostLog(level, nil, 0)
		return
	}
	hostLog(level, unsafe.Pointer(unsafe.StringData(line)), uint32(len(line)))
}
