//go:build linux || darwin

package wazero

import "syscall"

var pageSize = syscall.Getpagesize()

// reserve maps n bytes of address space that no access may touch yet.
func reserve(n uint64) ([]byte, error) {
	return syscall.Mmap(-1, 0, int(n), syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
}

// commit makes b, part of a reservation, readable and writable; its pages
// take memory as the guest first touches them.
func commit(b []byte) error {
	return syscall.Mprotect(b, syscall.PROT_READ|syscall.PROT_WRITE)
}

// unreserve unmaps a whole reservation.
func unreserve(b []byte) error { return syscall.Munmap(b) }
