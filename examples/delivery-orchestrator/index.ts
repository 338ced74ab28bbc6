/** Seed 001, exercise 3: the food delivery orchestrator and the services it coordinates. */
import type { Definition } from '../../src/index.js';
import { DeliveryDispatch, DeliveryDriver } from './drivers.js';
import { DeliveryOrchestrator } from './orchestrator.js';
import { DeliveryPayments } from './payments.js';
import { DeliveryRestaurant } from './restaurant.js';

export {
  DeliveryDispatch,
  DeliveryDriver,
  DeliveryOrchestrator,
  DeliveryPayments,
  DeliveryRestaurant,
};

/** Every definition of the food delivery example. */
export const foodDelivery: Definition[] = [
  DeliveryOrchestrator,
  DeliveryRestaurant,
  DeliveryPayments,
  DeliveryDriver,
  DeliveryDispatch,
];
