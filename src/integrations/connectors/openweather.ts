/**
 * OpenWeather: current weather and forecasts (the API key in the `appid` query parameter).
 */
import { apiKey } from '../declarations/auth/config.js';
import { integration } from '../declarations/config.js';
import { env, type Secret } from '../declarations/secrets.js';
import {
  withOverrides,
  type Connector,
  type ConnectorOptions,
  type OperationTypes,
} from './common.js';
import { openWeatherMock } from './openweather.mock.js';
import type {
  OpenWeatherCurrent,
  OpenWeatherForecast,
  OpenWeatherForecastParams,
  OpenWeatherLocation,
} from './openweather.types.js';

export type * from './openweather.types.js';

/** The operations of {@link openWeather}, with their parameter and result types. */
export interface OpenWeatherOperations {
  get_current: OperationTypes<OpenWeatherLocation, OpenWeatherCurrent>;
  get_forecast: OperationTypes<OpenWeatherForecastParams, OpenWeatherForecast>;
}

/** Options of {@link openWeather}. */
export interface OpenWeatherOptions extends ConnectorOptions {
  /** Default `env('OPENWEATHER_API_KEY')`. */
  apiKey?: Secret;
}

/**
 * OpenWeather, ready to call: `get_current` and `get_forecast`, by city (`q`), coordinates
 * (`lat`, `lon`), city `id` or `zip`; `units` default `metric`.
 *
 * Defaults (seed 003's WeatherAPI): base URL `https://api.openweathermap.org`; `appid` from
 * `$OPENWEATHER_API_KEY`; answers cached 15 minutes (`get_current` 10); when the API cannot be
 * reached (breaker open, retries used up) the last cached answer is returned; 60 calls a minute
 * (the free plan); 10s timeout; 3 retries; a breaker opening after 5 failures in a minute for
 * 30s.
 *
 * Mock: the same city always has the same weather, in the requested units; a city starting with
 * `missing` is 404 `city not found`; no location is 400 `Nothing to geocode`.
 *
 * @example
 * ```ts
 * export const weather = openWeather();
 *
 * const now = await use(ctx, weather).get_current({ q: 'Lisbon,PT' });
 * `${now.name}: ${now.main.temp}°C, ${now.weather[0]?.description}`;
 * ```
 */
export function openWeather(options: OpenWeatherOptions = {}): Connector<OpenWeatherOperations> {
  return integration(
    withOverrides(
      {
        name: 'OpenWeather',
        baseUrl: 'https://api.openweathermap.org',
        auth: apiKey(options.apiKey ?? env('OPENWEATHER_API_KEY'), { query: 'appid' }),
        timeout: '10s',
        retry: { maxAttempts: 4 },
        circuitBreaker: { failures: 5, window: '1m', reset: '30s' },
        rateLimit: { requests: 60, per: '1m' },
        cache: { defaultTtl: '15m' },
        fallback: 'cache',
        mock: openWeatherMock(),
        // Parameters other than units go to the query string as given; a `units` parameter
        // replaces the default below.
        operations: {
          get_current: {
            method: 'GET',
            path: '/data/2.5/weather',
            query: { units: 'metric' },
            cache: '10m',
          },
          get_forecast: { method: 'GET', path: '/data/2.5/forecast', query: { units: 'metric' } },
        },
      },
      options,
    ),
  );
}
