import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openWeather } from '../../../src/integrations/index.js';
import { openWeatherMock } from '../../../src/integrations/mocks.js';
import { FakeClock } from '../../../src/testing/index.js';
import { fakeOpenWeather, type Fake } from '../../fakes/providers/index.js';
import { callError, clientOf, FAST_RETRY, mockReq, runtime } from './helpers.js';

const KEY = 'ow-keel-key';

let fake: Fake;
beforeAll(async () => {
  fake = await fakeOpenWeather(KEY);
});
afterAll(() => fake.api.close());

function client(name: string, clock?: FakeClock, retry: typeof FAST_RETRY | false = FAST_RETRY) {
  return clientOf(
    runtime({ env: { OPENWEATHER_API_KEY: KEY }, ...(clock === undefined ? {} : { clock }) }),
    openWeather({ name, baseUrl: fake.api.url, retry, rateLimit: false }),
  );
}

describe('openweather connector on the wire', () => {
  it('GETs /data/2.5/weather with the city, metric units and appid in the query; caches it', async () => {
    const weather = client('OpenWeatherWire1');
    const before = fake.api.requests.length;
    const now = await weather.get_current({ q: 'Lisbon,PT' });
    const r = fake.api.last();
    expect(r.method).toBe('GET');
    expect(r.rawPath).toBe('/data/2.5/weather');
    expect(r.query).toEqual({ units: 'metric', q: 'Lisbon,PT', appid: KEY });
    expect(now).toMatchObject({ name: 'Lisbon', sys: { country: 'PT' }, cod: 200 });
    expect(now.weather[0]).toMatchObject({ id: expect.any(Number), main: expect.any(String) });
    await weather.get_current({ q: 'Lisbon,PT' });
    expect(fake.api.requests.length - before).toBe(1);
  });

  it('a units parameter replaces the default; a forecast has cnt 3-hour steps', async () => {
    const weather = client('OpenWeatherWire2');
    const f = await weather.get_forecast({ lat: 38.72, lon: -9.14, units: 'imperial', cnt: 4 });
    expect(fake.api.last().query).toMatchObject({
      units: 'imperial',
      lat: '38.72',
      lon: '-9.14',
      cnt: '4',
    });
    expect(f.list).toHaveLength(4);
    expect(f.list[1]!.dt - f.list[0]!.dt).toBe(10_800);
  });

  it('an unknown city is 404 at once', async () => {
    const err = await callError(client('OpenWeatherWire3').get_current({ q: 'Missingville' }));
    expect(err.failure).toMatchObject({
      status: 404,
      attempts: 1,
      body: { cod: '404', message: 'city not found' },
    });
  });

  it('answers from the expired cache when the API fails (the seed’s fallback: cache)', async () => {
    const clock = new FakeClock();
    const weather = client('OpenWeatherWire4', clock, false);
    const first = await weather.get_current({ q: 'Oslo' });
    await clock.advance('11m');
    fake.mock.failNext(1, 503);
    const stale = await weather.get_current.withResponse({ q: 'Oslo' });
    expect(stale).toMatchObject({ source: 'fallback-cache', fallback: true });
    expect(stale.data).toEqual(first);
  });
});

describe('openweather mock', () => {
  const get = (query: Record<string, string>) =>
    openWeatherMock()(mockReq('GET', '/data/2.5/weather', { query }));

  it('the same place has the same weather; units convert the temperature', () => {
    const k = get({ q: 'Paris', units: 'standard' }).body as { main: { temp: number } };
    const c = get({ q: 'Paris', units: 'metric' }).body as { main: { temp: number } };
    expect(get({ q: 'Paris', units: 'metric' }).body).toEqual(c);
    expect(c.main.temp).toBeCloseTo(k.main.temp - 273.15, 1);
  });

  it("gives OpenWeather's errors for no location and a bad latitude", () => {
    expect(get({})).toMatchObject({ status: 400, body: { message: 'Nothing to geocode' } });
    expect(get({ lat: '91', lon: '0' })).toMatchObject({
      status: 400,
      body: { message: 'wrong latitude' },
    });
  });
});
