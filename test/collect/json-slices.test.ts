import { arrayElementTexts } from '../../src/collector/json-slices';

describe('the text of each element of a request body array (rejected events are kept as sent)', () => {
  it('finds the elements of a batch, strings holding brackets, quotes and escapes included', () => {
    const a = '{ "type": "track", "event": "a ] } [ { \\" \\\\", "n": 12345678901234567890 }';
    const b = '[1, {"x": []}]';
    const body = `{"sentAt": "2024-01-01T00:00:00Z", "batch": [\n  ${a},\n  ${b} ,"s" , null\n], "context": {}}`;
    expect(arrayElementTexts(body, 'batch')).toEqual([a, b, '"s"', 'null']);
    // every element is the text JSON.parse read it from
    expect(arrayElementTexts(body, 'batch')?.map((t) => JSON.parse(t) as unknown)).toEqual(
      (JSON.parse(body) as { batch: unknown[] }).batch,
    );
  });

  it('takes the last of repeated keys, as JSON.parse does, and a key written with escapes', () => {
    expect(arrayElementTexts('{"batch": [1], "batch": [2, 3]}', 'batch')).toEqual(['2', '3']);
    expect(arrayElementTexts('{"b\\u0061tch": [{"a":1}]}', 'batch')).toEqual(['{"a":1}']);
  });

  it('reads a root array (a webhook), an empty one and a byte order mark', () => {
    expect(arrayElementTexts('\uFEFF [ {"a": "]"} , {} ] ', null)).toEqual(['{"a": "]"}', '{}']);
    expect(arrayElementTexts('[ ]', null)).toEqual([]);
  });

  it('answers null where the body is not shaped so (the caller then re-serialises)', () => {
    expect(arrayElementTexts('{"batch": {"a": 1}}', 'batch')).toBeNull();
    expect(arrayElementTexts('{"events": [1]}', 'batch')).toBeNull();
    expect(arrayElementTexts('{"a": 1}', null)).toBeNull();
    expect(arrayElementTexts('[1, 2', null)).toBeNull();
    expect(arrayElementTexts('{"batch": [1] ', 'batch')).toBeNull();
  });
});
