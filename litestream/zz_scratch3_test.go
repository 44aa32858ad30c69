package litestream
import "time"
var timeZero time.Time
