/**
 * The time, read once per turn of the event loop on the request path (as
 * nginx caches its clock once per iteration of its event loop).
 *
 * On the machines this library runs on, a read of the wall clock costs as
 * much as the rest of a dispatch's bookkeeping together. Nothing can happen
 * in the middle of a synchronous run of JavaScript (no timer fires, no
 * message arrives), so every request started or finished in one run is
 * stamped with the time the run first asked for; the stamp is forgotten when
 * the run ends (a microtask). What that hides is the time a run spends on
 * synchronous work of its own: an in-process request that finishes without
 * yielding is timed as taking less than a turn.
 *
 * Only Effect's own wall clock is cached this way: a `TestClock`, or any
 * clock of the application's, is read every time.
 */
import { Clock } from "effect"

export const makeTurnClock = (clock: Clock.Clock): (() => number) => {
  if (Object.getPrototypeOf(clock) !== Object.getPrototypeOf(Clock.Clock.defaultValue())) {
    return () => clock.currentTimeMillisUnsafe()
  }
  let stamp = -1
  const forget = () => {
    stamp = -1
  }
  return () => {
    if (stamp === -1) {
      stamp = clock.currentTimeMillisUnsafe()
      queueMicrotask(forget)
    }
    return stamp
  }
}
