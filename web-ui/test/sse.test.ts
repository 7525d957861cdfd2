// Goal: prove that the log follow's event-stream parser yields each event's data once, whatever
// way the text is split into chunks, skips keep-alive comments and joins multi-line data.
import { describe, expect, it } from 'vitest';
import { SseParser } from '../src/sse';

describe('SseParser', () => {
  it('yields complete events only, across chunk boundaries', () => {
    const p = new SseParser();
    expect(p.push('data: first li')).toEqual([]);
    expect(p.push('ne\n\ndata: sec')).toEqual(['first line']);
    expect(p.push('ond\r\n\r\n')).toEqual(['second']);
  });
  it('skips comments and joins several data lines of one event', () => {
    const p = new SseParser();
    expect(p.push(': keep-alive\n\ndata: a\ndata: b\n\ndata:c\n\n')).toEqual(['a\nb', 'c']);
  });
});
