//go:build !unix

package scheduler

import "os"

// lockDir does not lock outside Unix: a second scheduler on one folder
// waits for etcd's own lock instead of failing at once.
func lockDir(string) (*os.File, error) { return nil, nil }
