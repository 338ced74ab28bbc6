/**
 * OpenWeather's Current Weather and 5-day Forecast APIs (api.openweathermap.org/data/2.5), typed
 * as OpenWeather documents them.
 */

/** Where: a city name (`Paris` or `Paris,FR`), coordinates, a city id, or a zip code. */
export interface OpenWeatherLocation {
  q?: string;
  lat?: number;
  lon?: number;
  id?: number;
  /** `94040,us`. */
  zip?: string;
  /** `standard` (Kelvin), `metric` (the connector's default) or `imperial`. */
  units?: 'standard' | 'metric' | 'imperial';
  /** Language of `weather[].description`: `en`, `fr`, ... */
  lang?: string;
}

/** `GET /data/2.5/forecast`: the location and how many 3-hour steps (default 40, 5 days). */
export interface OpenWeatherForecastParams extends OpenWeatherLocation {
  cnt?: number;
}

/** One weather condition. */
export interface OpenWeatherCondition {
  /** Condition code: 800 clear, 80x clouds, 5xx rain, 6xx snow, 2xx thunderstorm. */
  id: number;
  main: string;
  description: string;
  icon: string;
}

/** Temperatures, pressure and humidity. */
export interface OpenWeatherMain {
  temp: number;
  feels_like: number;
  temp_min: number;
  temp_max: number;
  pressure: number;
  humidity: number;
  sea_level?: number;
  grnd_level?: number;
}

/** `GET /data/2.5/weather`. */
export interface OpenWeatherCurrent {
  coord: { lon: number; lat: number };
  weather: OpenWeatherCondition[];
  base: string;
  main: OpenWeatherMain;
  visibility: number;
  wind: { speed: number; deg: number; gust?: number };
  clouds: { all: number };
  rain?: { '1h'?: number };
  dt: number;
  sys: { country: string; sunrise: number; sunset: number };
  timezone: number;
  id: number;
  name: string;
  cod: number;
}

/** One step of a forecast. */
export interface OpenWeatherForecastItem {
  dt: number;
  main: OpenWeatherMain;
  weather: OpenWeatherCondition[];
  clouds: { all: number };
  wind: { speed: number; deg: number; gust?: number };
  visibility: number;
  /** Probability of precipitation, 0 to 1. */
  pop: number;
  sys: { pod: 'd' | 'n' };
  dt_txt: string;
}

/** `GET /data/2.5/forecast`. */
export interface OpenWeatherForecast {
  cod: string;
  message: number;
  cnt: number;
  list: OpenWeatherForecastItem[];
  city: {
    id: number;
    name: string;
    coord: { lat: number; lon: number };
    country: string;
    population: number;
    timezone: number;
    sunrise: number;
    sunset: number;
  };
}

/** OpenWeather's error body (`cod` is a string or a number, depending on the error). */
export interface OpenWeatherErrorBody {
  cod: string | number;
  message: string;
}
