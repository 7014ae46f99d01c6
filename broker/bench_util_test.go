package broker_test

import "time"

var timeZero time.Time

// waitABit lets a publisher that is ahead of the window wait without
// spinning the scheduler.
func waitABit() { time.Sleep(50 * time.Microsecond) }
