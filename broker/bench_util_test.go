package broker_test

import (
	"runtime"
	"time"
)

var timeZero time.Time

func waitABit() { runtime.Gosched() }
