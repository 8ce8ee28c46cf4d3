import { Body, Controller, Get, HttpCode, Inject, Post, UseGuards } from '@nestjs/common';
import { ApiKeyGuard, CurrentPrincipal, Roles, type Principal } from '@fastgpu/auth';
import { ApiDoc, parseInput } from '@fastgpu/http';
import { answer } from '../invoices/invoices.controller';
import { publishPriceBookRequest } from '../invoices/invoices.schema';
import { PriceBooksService } from './price-books.service';
import { priceBooksResponse, publishedPriceBookResponse } from './price-books.responses';

/** Price books: finance and admin publish immutable, effective-dated versions; everyone reads them. */
@Controller('v1/price-books')
@UseGuards(ApiKeyGuard)
@Roles('tenant', 'finance', 'sre')
export class PriceBooksController {
  constructor(@Inject(PriceBooksService) private readonly priceBooks: PriceBooksService) {}

  @Get()
  @ApiDoc({ summary: 'Every version of every price book', response: priceBooksResponse, tags: ['billing'] })
  async list() {
    return { priceBooks: await this.priceBooks.list() };
  }

  @Post()
  @HttpCode(201)
  @Roles('finance')
  @ApiDoc({ summary: 'Publish the next version of a price book (PriceBookPublished)', body: publishPriceBookRequest, response: publishedPriceBookResponse, errors: { 409: 'version already taken', 422: 'invalid prices' }, tags: ['billing'] })
  async publish(@CurrentPrincipal() principal: Principal, @Body() body: unknown) {
    const b = parseInput(publishPriceBookRequest, body);
    return answer(() => this.priceBooks.publish(b, principal.keyId));
  }
}
