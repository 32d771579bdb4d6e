package main

import (
	"context"
	"errors"
)

func (h *harness) ha(ctx context.Context) error    { return errors.New("todo") }
func (h *harness) scale(ctx context.Context) error { return errors.New("todo") }
