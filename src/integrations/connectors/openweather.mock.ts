/**
 * OpenWeather in-process: current weather and forecasts derived from the location (the same
 * city always has the same weather), in the requested units. Failures on demand: a city name
 * starting with `missing` → 404 `city not found`; no location → 400 `Nothing to geocode`; a
 * latitude outside ±90 → 400 `wrong latitude`; `failNext(1, 429)` → OpenWeather's "account
 * temporarily blocked" answer.
 */
import type { MockRequest, MockResponse } from '../declarations/mock.js';
import {
  connectorMock,
  isMissing,
  json,
  MOCK_EPOCH_S,
  numberFrom,
  routes,
  type ConnectorMock,
} from './mock-kit.js';
import type {
  OpenWeatherCondition,
  OpenWeatherForecastItem,
  OpenWeatherCurrent,
  OpenWeatherForecast,
  OpenWeatherMain,
} from './openweather.types.js';

/**
 * An OpenWeather mock.
 *
 * @example
 * ```ts
 * const weather = openWeather({ mock: openWeatherMock(), mockMode: true });
 * ```
 */
export function openWeatherMock(): ConnectorMock {
  return connectorMock(
    () =>
      routes(
        [
          { method: 'GET', path: '/data/2.5/weather', handle: current },
          { method: 'GET', path: '/data/2.5/forecast', handle: forecast },
        ],
        () => json(404, { cod: '404', message: 'Internal error' }),
      ),
    (status) =>
      status === 429
        ? json(429, {
            cod: 429,
            message:
              'Your account is temporary blocked due to exceeding of requests limitation of your subscription type. Please choose the proper subscription https://openweathermap.org/price',
          })
        : json(status, {
            cod: String(status),
            message: status >= 500 ? 'Internal error' : `Mock failure with status ${status}`,
          }),
  );
}

const CONDITIONS: readonly OpenWeatherCondition[] = [
  { id: 800, main: 'Clear', description: 'clear sky', icon: '01d' },
  { id: 801, main: 'Clouds', description: 'few clouds', icon: '02d' },
  { id: 803, main: 'Clouds', description: 'broken clouds', icon: '04d' },
  { id: 500, main: 'Rain', description: 'light rain', icon: '10d' },
  { id: 600, main: 'Snow', description: 'light snow', icon: '13d' },
];

interface Place {
  name: string;
  country: string;
  lat: number;
  lon: number;
  id: number;
}

/** The location asked for, or the error OpenWeather gives. */
function place(req: MockRequest): Place | { error: MockResponse } {
  const { q, lat, lon, id, zip } = req.query;
  if (q !== undefined && q.trim() !== '') {
    const [city = '', country] = q.split(',').map((s) => s.trim());
    if (isMissing(city)) return { error: json(404, { cod: '404', message: 'city not found' }) };
    return locate(titleCase(city), country?.toUpperCase());
  }
  if (lat !== undefined && lon !== undefined) {
    const la = Number(lat);
    const lo = Number(lon);
    if (!Number.isFinite(la) || la < -90 || la > 90)
      return { error: json(400, { cod: '400', message: 'wrong latitude' }) };
    if (!Number.isFinite(lo) || lo < -180 || lo > 180)
      return { error: json(400, { cod: '400', message: 'wrong longitude' }) };
    return { ...locate(`Place ${la.toFixed(2)},${lo.toFixed(2)}`, undefined), lat: la, lon: lo };
  }
  if (id !== undefined) return locate(`City ${id}`, undefined);
  if (zip !== undefined)
    return locate(`Zip ${zip.split(',')[0]}`, zip.split(',')[1]?.toUpperCase() ?? 'US');
  return { error: json(400, { cod: '400', message: 'Nothing to geocode' }) };
}

function locate(name: string, country: string | undefined): Place {
  const countries = ['US', 'GB', 'FR', 'DE', 'JP', 'BR', 'IN', 'AU'];
  return {
    name,
    country: country ?? countries[numberFrom(countries.length, 'country', name)]!,
    lat: Math.round((numberFrom(12_000, 'lat', name) / 100 - 60) * 1e4) / 1e4,
    lon: Math.round((numberFrom(36_000, 'lon', name) / 100 - 180) * 1e4) / 1e4,
    id: 100_000 + numberFrom(9_000_000, 'id', name),
  };
}

/** Kelvin, converted to the requested units. */
function temperature(kelvin: number, units: string | undefined): number {
  const t =
    units === 'metric'
      ? kelvin - 273.15
      : units === 'imperial'
        ? (kelvin - 273.15) * 1.8 + 32
        : kelvin;
  return Math.round(t * 100) / 100;
}

function main(p: Place, step: number, units: string | undefined): OpenWeatherMain {
  const k = 263 + numberFrom(30, 'temp', p.name) + (numberFrom(7, 'drift', p.name, step) - 3);
  return {
    temp: temperature(k, units),
    feels_like: temperature(k - 1.5, units),
    temp_min: temperature(k - 2, units),
    temp_max: temperature(k + 2, units),
    pressure: 995 + numberFrom(35, 'pressure', p.name, step),
    humidity: 30 + numberFrom(65, 'humidity', p.name, step),
  };
}

function speed(mps: number, units: string | undefined): number {
  return Math.round((units === 'imperial' ? mps * 2.23694 : mps) * 100) / 100;
}

function current(req: MockRequest): MockResponse {
  const p = place(req);
  if ('error' in p) return p.error;
  const units = req.query.units;
  const condition = CONDITIONS[numberFrom(CONDITIONS.length, 'sky', p.name)]!;
  const body: OpenWeatherCurrent = {
    coord: { lon: p.lon, lat: p.lat },
    weather: [condition],
    base: 'stations',
    main: main(p, 0, units),
    visibility: 10_000,
    wind: {
      speed: speed(numberFrom(150, 'wind', p.name) / 10, units),
      deg: numberFrom(360, 'deg', p.name),
    },
    clouds: {
      all:
        condition.main === 'Clouds'
          ? 40 + numberFrom(60, 'clouds', p.name)
          : numberFrom(20, 'clouds', p.name),
    },
    ...(condition.main === 'Rain' ? { rain: { '1h': 0.5 } } : {}),
    dt: MOCK_EPOCH_S + 43_200,
    sys: { country: p.country, sunrise: MOCK_EPOCH_S + 25_200, sunset: MOCK_EPOCH_S + 61_200 },
    timezone: 0,
    id: p.id,
    name: p.name,
    cod: 200,
  };
  return json(200, body);
}

function forecast(req: MockRequest): MockResponse {
  const p = place(req);
  if ('error' in p) return p.error;
  const units = req.query.units;
  const cnt = Math.min(40, Math.max(1, Number(req.query.cnt ?? 40) || 40));
  const list = Array.from({ length: cnt }, (_, i): OpenWeatherForecastItem => {
    const dt = MOCK_EPOCH_S + 43_200 + i * 10_800;
    const hour = new Date(dt * 1000).getUTCHours();
    const c = CONDITIONS[numberFrom(CONDITIONS.length, 'sky', p.name, i)]!;
    return {
      dt,
      main: main(p, i, units),
      weather: [c],
      clouds: { all: numberFrom(100, 'clouds', p.name, i) },
      wind: {
        speed: speed(numberFrom(150, 'wind', p.name, i) / 10, units),
        deg: numberFrom(360, 'deg', p.name, i),
      },
      visibility: 10_000,
      pop: c.main === 'Rain' || c.main === 'Snow' ? 0.6 : 0,
      sys: { pod: hour >= 6 && hour < 18 ? 'd' : 'n' },
      dt_txt: new Date(dt * 1000).toISOString().replace('T', ' ').slice(0, 19),
    };
  });
  const body: OpenWeatherForecast = {
    cod: '200',
    message: 0,
    cnt,
    list,
    city: {
      id: p.id,
      name: p.name,
      coord: { lat: p.lat, lon: p.lon },
      country: p.country,
      population: numberFrom(5_000_000, 'population', p.name),
      timezone: 0,
      sunrise: MOCK_EPOCH_S + 25_200,
      sunset: MOCK_EPOCH_S + 61_200,
    },
  };
  return json(200, body);
}

function titleCase(s: string): string {
  return s.replace(/\b\p{L}/gu, (c) => c.toUpperCase());
}
