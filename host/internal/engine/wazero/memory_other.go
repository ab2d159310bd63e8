//go:build !(linux || darwin)

package wazero

import "errors"

var pageSize = 65536

var errNoReserve = errors.New("reserving address space is not implemented on this system")

// reserve fails: linear memory lives on the Go heap here, as wazero's own.
func reserve(n uint64) ([]byte, error) { return nil, errNoReserve }

func commit(b []byte) error { return errNoReserve }

func unreserve(b []byte) error { return errNoReserve }
